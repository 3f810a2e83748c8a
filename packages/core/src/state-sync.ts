/** The default StateSync: the primary's whole state in one stateSnap message, installed as is. */
import type { StateSync } from './api.js';

/** The default StateSync: the whole state as one snapshot message, installed as it is. */
export const wholeStateSync: StateSync = {
  capture: (snapshot) => snapshot,
  install: (snapshot) => snapshot,
};
