/**
 * Scheduling priority for a joiner. A replica receiving a state transfer is background work: while it
 * decodes and indexes at full speed it competes for the CPU with the serving replica, whose request
 * latency is what users see. On a machine where both run (or share cores with other busy processes),
 * lowering the joiner's priority for the duration of the transfer lets the serving replica win the CPU
 * when it needs it; the joiner still gets all the otherwise idle CPU.
 *
 * `os.setPriority` on Linux changes the calling thread (the JS main thread), which does the decoding.
 * Raising the priority back needs privileges (CAP_SYS_NICE or RLIMIT_NICE) on Linux: without them the
 * restore is refused and the process keeps the lower priority (reported by the returned function).
 */
import { getPriority, setPriority } from 'node:os';

/** Default niceness added to a joiner for the transfer (0 = normal priority, 19 = lowest). */
export const JOINER_NICE_DELTA = 10;

/**
 * Lower this process's (main thread's) priority by `delta` nice levels (capped at 19); returns a
 * function restoring the previous priority, which returns false when the OS refused. Never throws:
 * when the priority cannot be read or changed, nothing changes and restore() returns true.
 */
export function lowerJoinerPriority(delta: number = JOINER_NICE_DELTA): () => boolean {
  let before: number;
  try {
    before = getPriority();
    if (delta <= 0) return () => true;
    setPriority(Math.min(19, before + Math.floor(delta)));
  } catch {
    return () => true;
  }
  let restored = false;
  return () => {
    if (restored) return true;
    restored = true;
    try {
      setPriority(before);
      return true;
    } catch {
      return false;
    }
  };
}
