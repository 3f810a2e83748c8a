import { describe, expect, it } from 'vitest';
import { ReplyOrder } from '../src/session/reply-order.js';

function harness() {
  const out: Array<[string, number]> = [];
  let last = 0;
  const order = new ReplyOrder<string>(
    (msg, seq) => {
      out.push([msg.toString(), seq]);
      last = Math.max(last, seq);
    },
    () => last,
  );
  return { out, order, m: (s: string) => Buffer.from(s) };
}

describe('ReplyOrder', () => {
  it('delivers at once when nothing is outstanding or the message is not past the oldest request', () => {
    const { out, order, m } = harness();
    order.offer(m('ev'), 3, false, false);
    order.expect(5, 'focus');
    order.offer(m('ev2'), 4, false, false);
    order.offer(m('r5'), 5, true, true);
    expect(out).toEqual([
      ['ev', 3],
      ['ev2', 4],
      ['r5', 5],
    ]);
    expect(order.waiting).toBe(0);
  });

  it('holds later replies, errors and events until the oldest request is answered', () => {
    const { out, order, m } = harness();
    order.expect(5, 'focus');
    order.expect(6, 'master');
    order.offer(m('r6'), 6, true, true); // the master is faster
    order.offer(m('err7'), 7, false, true);
    order.offer(m('ev7'), 7, false, false);
    expect(out).toEqual([]);
    order.offer(m('r5'), 5, true, true);
    expect(out).toEqual([
      ['r5', 5],
      ['r6', 6],
      ['err7', 7],
      ['ev7', 7],
    ]);
  });

  it('lets several replies of one request through before the final one resolves it', () => {
    const { out, order, m } = harness();
    order.expect(2, 'master');
    order.offer(m('a'), 2, true, false);
    order.offer(m('b'), 2, true, false);
    order.offer(m('x'), 3, false, false);
    order.offer(m('end'), 2, true, true);
    expect(out.map((o) => o[0])).toEqual(['a', 'b', 'end', 'x']);
  });

  it('reassigns the requests of a server that left', () => {
    const { order } = harness();
    order.expect(1, 'p1');
    order.expect(2, 'master');
    order.expect(3, 'p1');
    expect(order.waitingOn('p1')).toEqual([1, 3]);
    order.reassign('p1', 'master');
    expect(order.waitingOn('master')).toEqual([1, 2, 3]);
  });
});
