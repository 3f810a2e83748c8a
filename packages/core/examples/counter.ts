// A replicated counter: the whole service is this definition. See docs/WRITING-A-SERVICE.md.
import { z } from 'zod';
import { defineService } from '@tandem/core';

const request = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), by: z.number().int() }),
  z.object({ op: z.literal('get') }),
  z.object({ op: z.literal('roll') }), // a dice roll: randomness comes from ctx, never Math.random()
]);
const reply = z.object({ value: z.number(), at: z.number() });

export const counter = defineService({
  name: 'counter',
  request,
  reply,
  initialState: () => ({ value: 0 }),
  apply(state, req, ctx) {
    if (req.op === 'add') {
      if (state.value + req.by < 0) throw new RangeError('counter cannot go below zero');
      state.value += req.by;
    } else if (req.op === 'roll') {
      state.value = 1 + Math.floor(ctx.random() * 6);
    }
    return { value: state.value, at: ctx.time }; // time comes from ctx, never Date.now()
  },
  snapshot: (state) => ({ value: state.value }),
  restore: (snap) => ({ value: (snap as { value: number }).value }),
});
