/**
 * Scheduling priority for a joiner. A replica receiving a state transfer is background work: while it
 * decodes and indexes at full speed it competes for the CPU with the serving replica, whose request
 * latency is what users see. On a machine where both run (or share cores with other busy processes),
 * lowering the joiner's priority for the duration of the transfer lets the serving replica win the CPU
 * when it needs it; the joiner still gets all the otherwise idle CPU.
 *
 * On Linux a nice value belongs to a thread: every thread of the process is lowered (the JS main
 * thread, which decodes, but also V8's garbage-collection and compiler threads and libuv's pool, which
 * would otherwise keep competing at full priority), listed from /proc/self/task. Elsewhere
 * `os.setPriority` changes the process. Raising the priority back needs privileges (CAP_SYS_NICE or
 * RLIMIT_NICE) on Linux: without them the restore is refused and the process keeps the lower priority
 * (reported by the returned function).
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** The process's thread ids on Linux (0 = "this thread/process" elsewhere). */
function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [0];
  }
}

/** Default niceness added to a joiner for the transfer (0 = normal priority, 19 = lowest). */
export const JOINER_NICE_DELTA = 10;

/**
 * Lower this process's priority (every thread's) by `delta` nice levels (capped at 19); returns a
 * function restoring the previous priority, which returns false when the OS refused. Never throws:
 * when the priority cannot be read or changed, nothing changes and restore() returns true.
 */
export function lowerJoinerPriority(delta: number = JOINER_NICE_DELTA): () => boolean {
  if (!(delta > 0)) return () => true;
  const lowered: { tid: number; before: number }[] = [];
  for (const tid of threadIds()) {
    try {
      const before = getPriority(tid);
      setPriority(tid, Math.min(19, before + Math.floor(delta)));
      lowered.push({ tid, before });
    } catch {
      // A thread that ended meanwhile, or a refusal: leave it.
    }
  }
  let restored = false;
  let ok = true;
  return () => {
    if (restored) return ok;
    restored = true;
    for (const { tid, before } of lowered) {
      try {
        setPriority(tid, before);
      } catch (err) {
        // ESRCH: the thread is gone (nothing to restore); anything else: refused.
        if ((err as { code?: string; info?: { code?: string } }).info?.code !== 'ESRCH') ok = false;
      }
    }
    return ok;
  };
}
