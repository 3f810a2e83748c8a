/**
 * Keeps what an application receives in sequence order although its replies come from different servers
 * (display queries from the input focus, server queries from the master). Requests that expect a reply
 * are registered in order; a reply, error or event whose sequence number is past the oldest unanswered
 * request is held until that request is answered, so the application's sequence never goes backwards.
 * Costs nothing while everything comes from one server in order (the common case).
 */
export class ReplyOrder<L> {
  private readonly seqs: number[] = [];
  private readonly links: L[] = [];
  private head = 0;
  private readonly held: Array<{ msg: Buffer; seq: number; exact: boolean; resolves: boolean }> = [];

  constructor(
    /** Writes a message with the given application sequence number. */
    private readonly emit: (msg: Buffer, seq: number) => void,
    /** The largest sequence number delivered so far. */
    private readonly lastDelivered: () => number,
  ) {}

  /** Registers a request `seq` whose reply will come from `link`. */
  expect(seq: number, link: L): void {
    this.seqs.push(seq);
    this.links.push(link);
  }

  /** Number of requests still waiting for their reply. */
  get waiting(): number {
    return this.seqs.length - this.head;
  }

  /** Sequence numbers still waiting for a reply from `link`. */
  waitingOn(link: L): number[] {
    const out: number[] = [];
    for (let i = this.head; i < this.seqs.length; i++) if (this.links[i] === link) out.push(this.seqs[i]!);
    return out;
  }

  /** Moves the requests waiting on `from` to `to` (their responder left and they were sent again). */
  reassign(from: L, to: L): void {
    for (let i = this.head; i < this.links.length; i++) if (this.links[i] === from) this.links[i] = to;
  }

  /**
   * Offers a message for delivery. `exact`: a reply, whose sequence number must not change; events and
   * errors are clamped to the last delivered number instead. `resolves`: the (final) reply or the error
   * that answers request `seq`.
   */
  offer(msg: Buffer, seq: number, exact: boolean, resolves: boolean): void {
    if (this.deliverable(seq)) this.send(msg, seq, exact, resolves);
    else this.held.push({ msg, seq, exact, resolves });
  }

  private deliverable(seq: number): boolean {
    return this.head >= this.seqs.length || seq <= this.seqs[this.head]!;
  }

  private send(msg: Buffer, seq: number, exact: boolean, resolves: boolean): void {
    this.emit(msg, exact ? seq : Math.max(seq, this.lastDelivered()));
    if (resolves && this.head < this.seqs.length && seq === this.seqs[this.head]) {
      this.head++;
      if (this.head > 1024 && this.head * 2 > this.seqs.length) {
        this.seqs.splice(0, this.head);
        this.links.splice(0, this.head);
        this.head = 0;
      }
      if (this.held.length) this.flush();
    }
  }

  private flush(): void {
    for (let progressed = true; progressed && this.held.length; ) {
      progressed = false;
      for (let i = 0; i < this.held.length; i++) {
        const h = this.held[i]!;
        if (!this.deliverable(h.seq)) continue;
        this.held.splice(i, 1);
        this.send(h.msg, h.seq, h.exact, h.resolves);
        progressed = true;
        break;
      }
    }
  }
}
