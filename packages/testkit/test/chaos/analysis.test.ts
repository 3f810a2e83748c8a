// The chaos report's judgements on hand-made timelines: stalls, false alarms, takeover times.
import { describe, expect, it } from 'vitest';
import { classifyAlarms, findOutages, firstReplyAfter, summarize, type FaultSpan } from '@tandem/testkit/chaos';

describe('findOutages', () => {
  it('counts every gap between successful replies longer than the bound, the run edges included', () => {
    const r = findOutages([100, 200, 900, 1000, 5200], 0, 6000, 500);
    expect(r.outages.map((o) => [o.from, o.to])).toEqual([
      [200, 900],
      [1000, 5200],
      [5200, 6000],
    ]);
    expect(r.longestMs).toBe(4200);
  });
  it('a run without any reply is one outage', () => {
    expect(findOutages([], 0, 3000, 1000).outages).toEqual([{ from: 0, to: 3000, ms: 3000 }]);
  });
  it('nothing above the bound: no outage', () => {
    expect(findOutages([10, 20, 30], 0, 40, 500).outages).toEqual([]);
  });
});

describe('classifyAlarms', () => {
  const faults: FaultSpan[] = [
    { node: 'b', kind: 'stop', start: 1000, end: 1700 },
    { node: 'a', kind: 'kill', start: 5000, end: 5300 },
  ];
  it('a peer-faulty about a replica paused or killed within the window before is justified', () => {
    const c = classifyAlarms(
      [
        { at: 1150, node: 'a', peer: 'b' }, // during the pause
        { at: 2100, node: 'a', peer: 'b' }, // 400 ms after SIGCONT, window 505
        { at: 5010, node: 'b', peer: 'a' }, // right after the kill
      ],
      faults,
      505,
    );
    expect(c.map((x) => x.falseAlarm)).toEqual([false, false, false]);
    expect(c[0]!.explainedBy).toEqual(faults[0]);
  });
  it('a peer-faulty without a nemesis action on that peer is a false alarm', () => {
    const c = classifyAlarms(
      [
        { at: 3000, node: 'a', peer: 'b', reason: 'no flushAck after 2 retransmissions' }, // b resumed 1300 ms ago
        { at: 1200, node: 'b', peer: 'a' }, // a was not faulted; b itself was paused
        { at: 900, node: 'a', peer: 'b' }, // before b's pause began
      ],
      faults,
      505,
    );
    expect(c.map((x) => x.falseAlarm)).toEqual([true, true, true]);
    expect(c[1]!.declarerFaulted).toEqual(faults[0]);
  });
});

describe('firstReplyAfter', () => {
  const successes = [
    { call: 90, return: 100, epoch: 1 },
    { call: 150, return: 210, epoch: 1 }, // issued before the signal, answered by the old primary's socket
    { call: 180, return: 600, epoch: 2 }, // issued before, answered by the new primary
    { call: 650, return: 660, epoch: 2 },
  ];
  it('takes the first reply from a newer epoch, or to a call issued after the signal', () => {
    expect(firstReplyAfter(successes, 200, 1)).toBe(400);
    expect(firstReplyAfter(successes, 200)).toBe(460);
    expect(firstReplyAfter(successes, 700, 2)).toBeUndefined();
  });
  it('summarizes as p50 / p99 / max', () => {
    expect(summarize([300, 400, 500])).toEqual({ count: 3, p50: 400, p99: 500, max: 500 });
    expect(summarize([])).toEqual({ count: 0, p50: null, p99: null, max: null });
  });
});
