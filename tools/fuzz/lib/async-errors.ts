/**
 * Uncaught exceptions and unhandled rejections, attributed to the input being run: the runner installs
 * one listener per thread and takes what arrived after each input (after a drain, so that rejections of
 * that input have surfaced).
 */
import type { Finding } from './types.js';

const pending: Finding[] = [];
let installed = false;

function describe(kind: 'uncaught exception' | 'unhandled rejection', reason: unknown): Finding {
  const err = reason instanceof Error ? reason : undefined;
  const name = err?.name ?? typeof reason;
  const message = err?.message ?? String(reason);
  return {
    kind: 'crash',
    signature: `${kind}: ${name}: ${normalise(message)}`,
    message: `${kind}: ${name}: ${message}`,
    ...(err?.stack ? { stack: err.stack } : {}),
  };
}

/** Install the listeners (idempotent). Under vitest its own listeners stay too (and fail the test run). */
export function captureAsyncErrors(): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => pending.push(describe('unhandled rejection', reason)));
  process.on('uncaughtException', (err) => pending.push(describe('uncaught exception', err)));
}

/** Findings that arrived since the last call. */
export function takeAsyncErrors(): Finding[] {
  return pending.splice(0);
}

/** Let the event loop turn once (rejections and nextTick work of the input surface). */
export function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A message with its varying numbers replaced, for signatures. */
export function normalise(message: string): string {
  return message
    .replace(/0x[0-9a-f]+/gi, 'N')
    .replace(/\d+(\.\d+)?/g, 'N')
    .replace(/"[^"]{12,}"/g, '"…"')
    .slice(0, 160);
}

/** A finding for an exception thrown where none (or another type) is allowed. */
export function crashFinding(where: string, err: unknown): Finding {
  const e = err instanceof Error ? err : undefined;
  const name = e?.name ?? typeof err;
  const message = e?.message ?? String(err);
  return {
    kind: 'crash',
    signature: `${where}: ${name}: ${normalise(message)}`,
    message: `${where}: ${name}: ${message}`,
    ...(e?.stack ? { stack: e.stack } : {}),
  };
}
