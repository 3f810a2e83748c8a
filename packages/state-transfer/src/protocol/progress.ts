/**
 * Progress of a transfer as events, and a one-line progress bar for CLIs.
 */
export type TransferPhase = 'snapshot' | 'catch-up' | 'verified' | 'following';

/** A snapshot of a transfer's progress: phase, bytes and records moved, rate, percentage. */
export interface TransferProgress {
  phase: TransferPhase;
  transferId: string;
  /** Snapshot bytes received (joiner) or acknowledged (server) so far. */
  bytes: number;
  /** Snapshot records so far and in total (when the service streams records). */
  records: number;
  totalRecords: number | undefined;
  /** Log entries applied after the snapshot. */
  entries: number;
  /** 0–100 of the snapshot (by records when known, else undefined until the end). */
  percent: number | undefined;
  /** Snapshot bytes per second since the transfer started. */
  bytesPerSecond: number;
  elapsedMs: number;
  /** Reconnections resumed so far, and fresh restarts (backlog overrun, bad whole-state checksum). */
  resumes: number;
  restarts: number;
}

/** Tracks counters and decides when to emit (at most every `intervalMs`, plus phase changes). */
export class ProgressMeter {
  readonly #now: () => number;
  readonly #intervalMs: number;
  #startedAt: number;
  #lastEmit = Number.NEGATIVE_INFINITY;
  transferId = '';
  phase: TransferPhase = 'snapshot';
  bytes = 0;
  records = 0;
  totalRecords: number | undefined;
  entries = 0;
  resumes = 0;
  restarts = 0;

  constructor(now: () => number, intervalMs = 250) {
    this.#now = now;
    this.#intervalMs = intervalMs;
    this.#startedAt = now();
  }

  /** Start counting a new (fresh) transfer. */
  restart(transferId: string, totalRecords: number | undefined): void {
    this.transferId = transferId;
    this.phase = 'snapshot';
    this.bytes = 0;
    this.records = 0;
    this.entries = 0;
    this.totalRecords = totalRecords;
    this.#startedAt = this.#now();
  }

  /** True when an event is due (rate-limited), unless `force`. */
  due(force = false): boolean {
    const now = this.#now();
    if (!force && now - this.#lastEmit < this.#intervalMs) return false;
    this.#lastEmit = now;
    return true;
  }

  /** The progress as it is now (percentage, elapsed time, rate). */
  snapshot(): TransferProgress {
    const elapsedMs = Math.max(0, this.#now() - this.#startedAt);
    let percent: number | undefined;
    if (this.phase !== 'snapshot') percent = 100;
    else if (this.totalRecords !== undefined && this.totalRecords > 0) percent = Math.min(100, (100 * this.records) / this.totalRecords);
    else if (this.totalRecords === 0) percent = 100;
    return {
      phase: this.phase,
      transferId: this.transferId,
      bytes: this.bytes,
      records: this.records,
      totalRecords: this.totalRecords,
      entries: this.entries,
      percent,
      bytesPerSecond: elapsedMs > 0 ? (this.bytes * 1000) / elapsedMs : 0,
      elapsedMs,
      resumes: this.resumes,
      restarts: this.restarts,
    };
  }
}

function human(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(2) + ' GB';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + ' MB';
  if (n >= 1e3) return (n / 1e3).toFixed(1) + ' kB';
  return `${Math.round(n)} B`;
}

/** One line such as `snapshot [#########-----------]  45.0%  54.1 MB  120.3 MB/s  450000/1000000 records`. */
export function formatProgress(p: TransferProgress, width = 24): string {
  const pct = p.percent;
  const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
  const bar = '[' + '#'.repeat(filled) + '-'.repeat(Math.max(0, width - filled)) + ']';
  const parts = [
    p.phase.padEnd(9),
    bar,
    (pct === undefined ? '   ?' : pct.toFixed(1).padStart(5)) + '%',
    human(p.bytes),
    human(p.bytesPerSecond) + '/s',
    p.totalRecords !== undefined ? `${p.records}/${p.totalRecords} records` : `${p.records} records`,
  ];
  if (p.entries > 0) parts.push(`+${p.entries} log entries`);
  if (p.resumes > 0) parts.push(`${p.resumes} resumed`);
  if (p.restarts > 0) parts.push(`${p.restarts} restarted`);
  return parts.join('  ');
}

/** Minimal writable (process.stderr fits). */
export interface ProgressOutput {
  /** Write text (no newline added). */
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * A progress listener for CLIs: redraws one line on a TTY (`\r`), prints a line per phase change
 * otherwise. Call `done()` to end the line.
 */
export function progressBar(
  output: ProgressOutput,
  width = 24,
): {
  /** Redraw the bar (TTY) or print a line (otherwise) for this progress. */
  update(p: TransferProgress): void;
  /** End the line. */
  done(): void;
} {
  let lastPhase: TransferPhase | undefined;
  let drawn = false;
  return {
    update(p) {
      const line = formatProgress(p, width);
      if (output.isTTY) {
        output.write('\r' + line + '\x1b[K');
        drawn = true;
      } else if (p.phase !== lastPhase) {
        output.write(line + '\n');
      }
      lastPhase = p.phase;
    },
    done() {
      if (drawn) output.write('\n');
      drawn = false;
    },
  };
}
