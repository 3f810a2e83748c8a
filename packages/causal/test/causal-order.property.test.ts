// Property tests on virtual time: random send schedules among 2–6 members, random delays (so reordering),
// duplicates and losses with redelivery. Happens-before is built by the test from what happened (sets of
// sends in each send's causal past), never from the library's clocks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCausalBufferFullError, type CausalGapError } from '../src/index.js';
import { addressedTo, runSim, type ScheduledSend, type SimMessage, type SimResult } from './helpers/sim.js';

const RUNS = Number(process.env.CAUSAL_PROPERTY_RUNS ?? 200);

const schedule = (n: number, minLength: number, maxLength: number): fc.Arbitrary<ScheduledSend[]> =>
  fc.array(
    fc.record({
      at: fc.integer({ min: 0, max: 400 }),
      proc: fc.integer({ min: 0, max: n - 1 }),
      to: fc.oneof({ weight: 1, arbitrary: fc.constant('all' as const) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: n - 1 }) }),
    }),
    { minLength, maxLength },
  );

const network = {
  seed: fc.integer(),
  reactProb: fc.double({ min: 0, max: 0.7, noNaN: true }),
  lossRate: fc.double({ min: 0, max: 0.4, noNaN: true }),
  dupRate: fc.double({ min: 0, max: 0.4, noNaN: true }),
  maxDelay: fc.integer({ min: 1, max: 200 }),
};

const scenario = (minSends: number) =>
  fc.integer({ min: 2, max: 6 }).chain((n) => fc.record({ n: fc.constant(n), sends: schedule(n, minSends, 40), ...network }));

/** Every member delivered every message addressed to it (exactly once: the sim flags a second delivery). */
function expectAllDelivered(r: SimResult, except: (p: number, m: SimMessage) => boolean = () => false): void {
  r.cores.forEach((_, p) => {
    const expected = addressedTo(r, p).filter((id) => !except(p, r.messages[id]!));
    expect(
      [...r.deliveries[p]!].sort((a, b) => a - b),
      `deliveries at p${p}`,
    ).toEqual(expected);
  });
}

describe('causal delivery under random schedules (property)', () => {
  it('respects happens-before and delivers every message exactly once when nothing is lost for good', () => {
    let held = 0;
    let duplicates = 0;
    fc.assert(
      fc.property(scenario(1), (s) => {
        const r = runSim({
          n: s.n,
          seed: s.seed,
          sends: s.sends,
          reactProb: s.reactProb,
          lossRate: s.lossRate,
          dupRate: s.dupRate,
          delay: [0, s.maxDelay],
          maxMessages: 100,
        });
        expect(r.violations).toEqual([]);
        expectAllDelivered(r);
        for (const core of r.cores) expect(core.held).toBe(0);
        expect(r.gaps).toEqual([]);
        held += r.maxHeld.reduce((a, b) => a + b, 0);
        duplicates += r.duplicatesDropped;
      }),
      { numRuns: RUNS },
    );
    // not vacuous: messages did arrive out of causal order and had to be held, and duplicates were dropped
    expect(held).toBeGreaterThan(0);
    expect(duplicates).toBeGreaterThan(0);
  });

  it('a predecessor lost for good: the typed gap report after its deadline, and nothing after it out of order', () => {
    const gapTimeoutMs = 5_000; // far beyond any delay + redelivery of the simulated network (≤ 200 + 5 × 40 + 100 ms)
    const lostKinds = new Set<string>();
    fc.assert(
      fc.property(scenario(10), fc.record({ message: fc.integer({ min: 0, max: 9 }), to: fc.nat(5) }), (s, lostForGood) => {
        const r = runSim({
          n: s.n,
          seed: s.seed,
          sends: s.sends,
          reactProb: s.reactProb,
          lossRate: s.lossRate,
          dupRate: s.dupRate,
          delay: [0, s.maxDelay],
          maxMessages: 100,
          lostForGood,
          gapTimeoutMs,
        });
        expect(r.violations).toEqual([]); // includes: nothing delivered before a causal predecessor
        const lost = r.lost!;
        const L = r.messages[lost.message]!;
        const p = lost.to;
        const dependsOnLost = (q: number, m: SimMessage): boolean => q === p && (m.id === L.id || m.past.has(L.id));
        // at p: exactly what does not depend on the lost message; elsewhere: everything
        expectAllDelivered(r, dependsOnLost);
        // reports only at p, one per message still held there, each exactly at its deadline
        const atP = r.gaps.filter((g) => g.proc === p);
        expect(r.gaps.length).toBe(atP.length);
        expect(atP.length).toBe(r.cores[p]!.held);
        expect(atP.length).toBeGreaterThan(0); // at least the follow-up message the sender sent after the lost one
        for (const { gap, at } of atP) {
          expect(gap.name).toBe('CausalGapError');
          expect(gap.waitedMs).toBe(gapTimeoutMs);
          const waiting = r.messages.find(
            (m) => `p${m.sender}` === gap.waiting.from && m.kind === gap.waiting.kind && m.seq === gap.waiting.seq,
          )!;
          expect(dependsOnLost(p, waiting)).toBe(true);
          expect(gap.heldSince).toBe(r.heldAt[p]!.get(waiting.id));
          expect(at).toBe(gap.heldSince + gapTimeoutMs);
        }
        // the report names the lost message: its sender, its kind, a range that covers it
        const covers = (gap: CausalGapError): boolean =>
          gap.missing.some((m) => m.from === `p${L.sender}` && m.kind === L.kind && m.after < L.seq && L.seq <= m.upTo && !m.held);
        expect(atP.some(({ gap }) => covers(gap))).toBe(true);
        lostKinds.add(L.kind);
      }),
      { numRuns: RUNS },
    );
    expect([...lostKinds].sort()).toEqual(['broadcast', 'direct']);
  });

  it('memory stays bounded under a flood: held never exceeds the bound; refusals are typed; all delivered once redelivered', () => {
    let refusals = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }).chain((n) => fc.record({ n: fc.constant(n), sends: schedule(n, 20, 60), ...network })),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        (s, bound, perSender) => {
          let worst = 0;
          let refusedTyped = true;
          const r = runSim({
            n: s.n,
            seed: s.seed,
            sends: s.sends.map((x) => ({ ...x, at: Math.floor(x.at / 10) })), // a burst
            reactProb: s.reactProb,
            lossRate: s.lossRate,
            dupRate: s.dupRate,
            delay: [0, Math.max(50, s.maxDelay * 2)],
            maxMessages: 120,
            maxHeldMessages: bound,
            maxHeldPerSender: perSender ? Math.max(1, bound - 1) : undefined,
            maxHeldBytes: perSender ? undefined : 1000 + bound * 100 * 8, // the sim's payloads count 100 bytes each
            afterReceive: (_p, core, outcome) => {
              worst = Math.max(worst, core.held);
              if (outcome.status === 'refused') {
                refusedTyped &&=
                  isCausalBufferFullError(outcome.error) && outcome.error.buffer === 'held' && outcome.error.member === outcome.id.from;
              }
            },
          });
          expect(worst).toBeLessThanOrEqual(bound);
          expect(refusedTyped).toBe(true);
          expect(r.violations).toEqual([]);
          expectAllDelivered(r);
          for (const core of r.cores) expect(core.held).toBe(0);
          refusals += r.refusals;
        },
      ),
      { numRuns: RUNS },
    );
    expect(refusals).toBeGreaterThan(0);
  });

  it('a member restored from a snapshot mid-run (a backup taking over) keeps causal order and exactly-once delivery', () => {
    fc.assert(
      fc.property(scenario(5), fc.integer({ min: 0, max: 600 }), fc.nat(5), (s, at, proc) => {
        const r = runSim({
          n: s.n,
          seed: s.seed,
          sends: s.sends,
          reactProb: s.reactProb,
          lossRate: s.lossRate,
          dupRate: s.dupRate,
          delay: [0, s.maxDelay],
          maxMessages: 100,
          restart: { at, proc },
        });
        expect(r.violations).toEqual([]);
        expectAllDelivered(r);
        for (const core of r.cores) expect(core.held).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });
});
