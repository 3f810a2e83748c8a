// A few CausalDelivery cores wired by hand: the test decides when each message arrives.
import { CausalDelivery, type CausalDeliveryOptions, type CausalGapError, type CausalMessage, type Delivery } from '../../src/index.js';
import { VirtualClock } from './virtual-clock.js';

export interface Member {
  core: CausalDelivery<string>;
  /** Payloads delivered, in order. */
  log: string[];
  deliveries: Delivery<string>[];
  gaps: CausalGapError[];
}

export function members(
  ids: readonly string[],
  options: Partial<Omit<CausalDeliveryOptions<string>, 'self' | 'members' | 'env' | 'deliver'>> & {
    onDeliver?: (self: string, d: Delivery<string>) => void;
  } = {},
): { clock: VirtualClock; m: Record<string, Member> } {
  const clock = new VirtualClock();
  const m: Record<string, Member> = {};
  for (const self of ids) {
    const member: Member = { core: undefined as never, log: [], deliveries: [], gaps: [] };
    member.core = new CausalDelivery<string>({
      ...options,
      self,
      members: ids,
      env: clock,
      deliver: (d) => {
        member.log.push(d.payload);
        member.deliveries.push(d);
        options.onDeliver?.(self, d);
      },
      onGap: (g) => member.gaps.push(g),
    });
    m[self] = member;
  }
  return { clock, m };
}

export type Msg = CausalMessage<string>;
