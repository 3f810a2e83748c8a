/** The fuzz targets, loaded on demand (a run of one target does not load the others' dependencies). */
import type { FuzzTarget } from '../lib/types.js';

export const TARGET_NAMES = ['framing', 'core', 'state-transfer', 'x11', 'xconf-ctl'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/**
 * Which counters apply to each target (see FuzzTarget.honest / .state), without loading it, and the rough
 * cost of one input (ms on a loaded 2-core machine), to start the longest jobs first.
 */
export const TARGET_INFO: Record<TargetName, { honest: boolean; state: boolean; costMs: number }> = {
  framing: { honest: true, state: false, costMs: 0.12 },
  core: { honest: true, state: true, costMs: 5 },
  'state-transfer': { honest: true, state: true, costMs: 2 },
  x11: { honest: true, state: false, costMs: 3 },
  'xconf-ctl': { honest: true, state: true, costMs: 10 },
};

export function isTargetName(name: string): name is TargetName {
  return (TARGET_NAMES as readonly string[]).includes(name);
}

export async function loadTarget(name: TargetName): Promise<FuzzTarget> {
  switch (name) {
    case 'framing':
      return (await import('./framing.js')).framingTarget() as FuzzTarget;
    case 'core':
      return (await import('./core.js')).coreTarget() as FuzzTarget;
    case 'state-transfer':
      return (await import('./state-transfer.js')).stateTransferTarget() as FuzzTarget;
    case 'x11':
      return (await import('./x11.js')).x11Target() as FuzzTarget;
    case 'xconf-ctl':
      return (await import('./xconf-ctl.js')).xconfCtlTarget() as FuzzTarget;
  }
}
