/**
 * A witness model for core tests (the rules of @tandem/witness-etcd without etcd): one owner at a time,
 * never an epoch below one granted; a grant lasts until released or expired by the test; each replica's
 * handle can be made unreachable and its grant made to lapse (holds() false) on demand.
 */
import type { Witness, WitnessRequest } from '../../src/api.js';

export class WitnessModel {
  owner: { nodeId: string; epoch: number } | undefined;
  maxEpoch = 0;
  readonly asked: (WitnessRequest & { answer: 'granted' | 'refused' | 'unreachable' })[] = [];
  readonly released: { nodeId: string; epoch: number }[] = [];
  readonly #handles = new Map<string, WitnessHandle>();

  handle(nodeId: string): WitnessHandle {
    let h = this.#handles.get(nodeId);
    if (h === undefined) {
      h = new WitnessHandle(this, nodeId);
      this.#handles.set(nodeId, h);
    }
    return h;
  }

  /** The owner's lease expired at the witness (its holder went silent). */
  expire(): void {
    this.owner = undefined;
  }

  /** Who was granted maxEpoch: an epoch is never granted to a second replica. */
  maxEpochHolder: string | undefined;

  decide(r: WitnessRequest): boolean {
    const free = this.owner === undefined || this.owner.nodeId === r.nodeId;
    if (!free || r.epoch < this.maxEpoch) return false;
    if (r.epoch === this.maxEpoch && this.maxEpochHolder !== undefined && this.maxEpochHolder !== r.nodeId) return false;
    this.owner = { nodeId: r.nodeId, epoch: r.epoch };
    this.maxEpoch = r.epoch;
    this.maxEpochHolder = r.nodeId;
    return true;
  }
}

export class WitnessHandle implements Witness {
  unreachable = false;
  lapsed = false;
  readonly leaseMs = 1000;

  constructor(
    readonly model: WitnessModel,
    readonly nodeId: string,
  ) {}

  async mayServeAlone(r: WitnessRequest): Promise<boolean> {
    await Promise.resolve();
    if (this.unreachable) {
      this.model.asked.push({ ...r, answer: 'unreachable' });
      throw new Error('witness unreachable (test)');
    }
    const ok = this.model.decide(r);
    if (ok) this.lapsed = false;
    this.model.asked.push({ ...r, answer: ok ? 'granted' : 'refused' });
    return ok;
  }

  holds(): boolean {
    return !this.lapsed && this.model.owner?.nodeId === this.nodeId;
  }

  release(r: { nodeId: string; epoch: number }): void {
    this.model.released.push(r);
    if (this.model.owner?.nodeId === r.nodeId) this.model.owner = undefined;
  }

  describe(): string {
    return `test witness: owner ${this.model.owner?.nodeId ?? 'none'}`;
  }
}
