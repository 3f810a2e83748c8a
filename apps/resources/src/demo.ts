/**
 * `tandem-resources demo`: the two pairs as child processes on loopback; Pro1 (this process) allocates a
 * resource from the handler and uses it at the resource, round after round; mid-way the handler's primary
 * is SIGKILLed right after replying and before its initialisation message leaves. Its backup takes over and
 * re-issues the message; Pro1's use waits for it at the resource. Verified at the end, from the resource's
 * replicated state: every resource initialised exactly once, and before its first use.
 */
import { nodeEnv } from '@tandem/core';
import { allocateAndUse, createPro1, type FlowResult } from './flow.js';
import { ThreeParty } from './harness.js';
import { createNetwork } from './serve.js';
import type { Flow } from './service.js';

/** Options of runDemo: which flow (4a or 4b), how many rounds, and JSON output. */
export interface DemoOptions {
  flow: Flow;
  rounds: number;
  json: boolean;
}

/**
 * The demo's outcome: rounds completed, whether the killed handler primary was taken over and its message re-issued, violations,
 * latencies.
 */
export interface DemoResult {
  ok: boolean;
  flow: Flow;
  rounds: number;
  completed: number;
  killedAtRound: number;
  takeover: boolean;
  reissued: boolean;
  violations: string[];
  p50Ms: number;
  maxMs: number;
}

const DEMO_REPLICATION = { flushIntervalMs: 20, heartbeatTimeoutMs: 300, ackTimeoutMs: 60, requestTimeoutMs: 150, forwardDelayMs: 2 };

/**
 * Start both pairs as child processes, run allocate-then-use rounds with the handler's primary crashing
 * halfway (after a reply, before its message leaves), and check each resource was initialised once, before its use.
 */
export async function runDemo(opts: DemoOptions, say: (line: string) => void): Promise<DemoResult> {
  const killAt = Math.max(1, Math.floor(opts.rounds / 2));
  say(`starting the resource handler pair and the resource pair (4 processes on loopback)…`);
  const parties = await ThreeParty.start({ replication: DEMO_REPLICATION, crashHandlerPrimary: killAt });
  const env = nodeEnv({ network: createNetwork() });
  const pro1 = createPro1(env, { handler: parties.handler, resource: parties.resource }, DEMO_REPLICATION);
  const results: FlowResult[] = [];
  const violations: string[] = [];
  const ids: string[] = [];
  try {
    for (let i = 1; i <= opts.rounds; i++) {
      const id = `res-${i}`;
      ids.push(id);
      if (i === killAt)
        say(`round ${i}: the handler's primary will be SIGKILLed after replying, before its message to the resource leaves`);
      try {
        const r = await allocateAndUse(pro1, id, opts.flow, () => env.now());
        results.push(r);
        say(`round ${i}: ${id} allocated in ${r.allocMs.toFixed(1)} ms, used after ${r.totalMs.toFixed(1)} ms`);
      } catch (err) {
        violations.push(`round ${i}: ${(err as Error).name}: ${(err as Error).message}`);
        say(`round ${i}: FAILED ${(err as Error).message}`);
      }
    }
    for (const id of ids) {
      const s = await pro1.resource.call({ op: 'inspect', id });
      if (s.inits !== 1) violations.push(`${id} initialised ${s.inits} times`);
      if ((s.firstUseSeq ?? 0) !== 0 && (s.initSeq ?? 0) > (s.firstUseSeq ?? 0))
        violations.push(`${id} used (seq ${s.firstUseSeq}) before its initialisation (seq ${s.initSeq})`);
      if (s.uses !== 1) violations.push(`${id} used ${s.uses} times`);
    }
  } finally {
    await pro1.close();
    await parties.stop();
  }
  const { handlerA, handlerB } = parties.procs;
  const killed = handlerA.events.some((e) => e.event === 'crashing');
  const takeover = handlerB.events.some((e) => e.event === 'takeover');
  const stats = handlerB.events.find((e) => e.event === 'stats');
  const reissued = Number(stats?.['reissued'] ?? 0) > 0;
  if (!killed) violations.push('the handler primary was not killed');
  if (!takeover) violations.push("the handler's backup did not take over");
  const totals = results.map((r) => r.totalMs).sort((a, b) => a - b);
  const result: DemoResult = {
    ok: violations.length === 0,
    flow: opts.flow,
    rounds: opts.rounds,
    completed: results.length,
    killedAtRound: killAt,
    takeover,
    reissued,
    violations,
    p50Ms: totals[Math.floor(totals.length / 2)] ?? 0,
    maxMs: totals[totals.length - 1] ?? 0,
  };
  say(
    result.ok
      ? `OK: ${results.length}/${opts.rounds} rounds; every resource initialised exactly once and before its use; the backup took over${reissued ? ' and re-issued the lost initialisation' : ''}`
      : `FAILED: ${violations.join('; ')}`,
  );
  return result;
}
