/** The service of the chaos example: a counter; `add` returns the new total (add 0 reads it). */
import { defineService } from '@tandem/core';
import { z } from 'zod';

export const counterService = defineService({
  name: 'chaos-counter',
  request: z.object({ add: z.number().int() }),
  reply: z.object({ total: z.number().int() }),
  initialState: () => ({ total: 0 }),
  apply: (state: { total: number }, req) => {
    state.total += req.add;
    return { total: state.total };
  },
  snapshot: (state) => ({ ...state }),
  restore: (snap) => ({ ...(snap as { total: number }) }),
});
