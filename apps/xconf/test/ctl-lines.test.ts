// The ctl server's line handling, with a model daemon behind it (no X server). Regressions found by the
// fuzzer (npm run fuzz -- --target xconf-ctl; docs/TESTING.md, "Fuzzing").
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LINE_BYTES, type CtlRequest } from '../src/ctl-protocol.js';
import { startCtlServer, type CtlServer } from '../src/ctl-server.js';

describe('ctl server lines', () => {
  let dir: string;
  let path: string;
  let server: CtlServer;
  const calls: CtlRequest[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xconf-ctl-lines-'));
    path = join(dir, 'ctl.sock');
    server = await startCtlServer(path, async (req) => {
      calls.push(req);
      if (req.cmd === 'stop') await new Promise((r) => setTimeout(r, 30)); // a slow request
      return { done: req.cmd };
    });
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Writes `parts` (a short pause between them), optionally half-closes, collects reply lines until the server closes. */
  async function talk(
    parts: string[],
    halfClose = false,
  ): Promise<{ replies: Array<{ id?: number; ok: boolean; error?: { code: string; message: string } }>; calls: CtlRequest[] }> {
    const before = calls.length;
    const s: Socket = connect(path);
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (buf += d));
    s.on('error', () => {});
    const closed = new Promise<void>((res) => s.on('close', () => res()));
    await new Promise<void>((res) => s.once('connect', () => res()));
    for (const p of parts) {
      s.write(p);
      await new Promise((r) => setTimeout(r, 20));
    }
    if (halfClose) s.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    s.destroy();
    return {
      replies: buf
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
      calls: calls.slice(before),
    };
  }

  /** A valid request padded with blanks inside its JSON to `bytes` bytes. */
  const padded = (id: number, bytes: number): string =>
    `{"id":${id},"cmd":"list"${' '.repeat(bytes - `{"id":${id},"cmd":"list"}`.length)}}`;

  it('refuses an over-long line that arrives with its newline, and hands nothing more to the daemon', async () => {
    const { replies, calls: handed } = await talk([`${padded(1, MAX_LINE_BYTES + 100)}\n{"id":2,"cmd":"list"}\n`]);
    expect(handed).toEqual([]); // the over-long request was handed to the daemon, then the next one
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect(replies[0]!.error!.message).toMatch(/longer than/);
  });

  it('a line of exactly MAX_LINE_BYTES is accepted', async () => {
    const { replies, calls: handed } = await talk([`${padded(3, MAX_LINE_BYTES)}\n`], true);
    expect(handed.map((c) => c.id)).toEqual([3]);
    expect(replies).toEqual([{ id: 3, ok: true, result: { done: 'list' } }]);
  });

  it('reads no request after refusing an over-long line', async () => {
    // One write: the server reads it in pieces; it refuses once more than MAX_LINE_BYTES are waiting
    // without a newline, and then the rest arrives.
    const { replies, calls: handed } = await talk([`${padded(4, 2 * MAX_LINE_BYTES + 5000)}\n{"id":5,"cmd":"stop","conference":"c"}\n`]);
    expect(handed).toEqual([]); // `stop` was handed to the daemon after the refusal
    expect(replies.map((r) => r.ok)).toEqual([false]);
  });

  it('answers a flood up to the limit, in order, then says why it closes', async () => {
    const lines = Array.from({ length: 70 }, (_, i) => `{"id":${i + 1},"cmd":"list"}\n`).join('');
    const { replies, calls: handed } = await talk([lines]);
    expect(handed).toHaveLength(64);
    expect(replies.slice(0, 64).map((r) => r.id)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1)); // were lost after the refusal
    expect(replies).toHaveLength(65);
    expect(replies[64]).toMatchObject({ ok: false, error: { code: 'bad-request' } });
    expect(replies[64]!.error!.message).toMatch(/more than 64 requests/);
  });

  it('answers a client that half-closes after its last request', async () => {
    const { replies, calls: handed } = await talk(['{"id":6,"cmd":"stop","conference":"c"}\n'], true);
    expect(handed.map((c) => c.cmd)).toEqual(['stop']);
    expect(replies).toEqual([{ id: 6, ok: true, result: { done: 'stop' } }]); // the daemon acted, the reply was lost
  });
});
