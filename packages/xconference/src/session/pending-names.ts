import { read16 } from '../wire/bytes.js';

/**
 * Names carried by requests that several servers answer (InternAtom, QueryExtension: name length at byte
 * 4, name from byte 8), kept by the application's sequence number until the last of them has answered.
 */
export class PendingNames {
  private readonly byAppSeq = new Map<number, { name: string; remaining: number }>();

  /** The application's request `appSeq` goes to `servers` servers. */
  expect(appSeq: number, req: Buffer, le: boolean, servers: number): void {
    this.byAppSeq.set(appSeq, { name: req.toString('latin1', 8, 8 + read16(req, 4, le)), remaining: servers });
  }

  /** `more` servers answer request `appSeq` too (participants that are joining get it queued). */
  addServers(appSeq: number, more: number): void {
    const pending = this.byAppSeq.get(appSeq);
    if (pending) pending.remaining += more;
  }

  /** One server answered request `appSeq`: the name it carried, or undefined if none is pending. */
  answered(appSeq: number): string | undefined {
    const pending = this.byAppSeq.get(appSeq);
    if (pending === undefined) return undefined;
    if (--pending.remaining <= 0) this.byAppSeq.delete(appSeq);
    return pending.name;
  }
}
