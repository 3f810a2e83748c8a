/**
 * Late join replays only resources that exist on the master: a create request the master answered with
 * an error (a font name it does not have, BadAlloc, …) had no effect there, so the tracker forgets the
 * resource it recorded. Remembers, by the application's sequence number, the last creations the tracker
 * recorded as new (bounded), until the master's error for one of them arrives.
 */
import { Opcode } from '../generated/xproto.js';
import { read32 } from '../wire/bytes.js';
import type { ResourceTracker } from './resource-tracker.js';

/** Core requests that create a resource whose id is at byte 4. */
const CREATES: ReadonlySet<number> = new Set([
  Opcode.CreateWindow,
  Opcode.CreatePixmap,
  Opcode.CreateGC,
  Opcode.OpenFont,
  Opcode.CreateColormap,
  Opcode.CopyColormapAndFree,
  Opcode.CreateCursor,
  Opcode.CreateGlyphCursor,
]);

/** Creations remembered (an error comes within a round trip; older ones are let go). */
const KEPT = 4096;

export class RefusedCreates {
  readonly #bySeq = new Map<number, number>();

  /** The tracker observes `req`; a creation it records as new is remembered under `appSeq`. */
  observe(tracker: ResourceTracker, req: Buffer, opcode: number, appSeq: number, le: boolean): void {
    const id = CREATES.has(opcode) && req.length >= 8 ? read32(req, 4, le) : undefined;
    const wasLive = id !== undefined && tracker.isLive(id);
    tracker.observe(req);
    if (id === undefined || wasLive || !tracker.isLive(id)) return;
    this.#bySeq.set(appSeq, id);
    if (this.#bySeq.size > KEPT) this.#bySeq.delete(this.#bySeq.keys().next().value!);
  }

  /** The master answered request `appSeq` with an error: a creation it made is forgotten. */
  masterError(tracker: ResourceTracker, appSeq: number): void {
    const id = this.#bySeq.get(appSeq);
    if (id === undefined) return;
    this.#bySeq.delete(appSeq);
    tracker.forget(id);
  }
}
