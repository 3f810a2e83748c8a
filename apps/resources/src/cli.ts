#!/usr/bin/env node
/**
 * tandem-resources: a replicated resource handler (Pro2) and a replicated resource (Pro3) that call each
 * other with causal ordering, and a client (Pro1) that asks for a resource and then uses it — the first
 * patent's FIG. 4a/4b. Exit codes: 0 ok, 1 failed, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { nodeEnv } from '@tandem/core';
import { runDemo } from './demo.js';
import { allocateAndUse, createPro1 } from './flow.js';
import { createNetwork, serve } from './serve.js';
import type { Flow } from './service.js';

const HELP = `tandem-resources — replicated services calling replicated services, causally ordered (FIG. 4a/4b)

Usage:
  tandem-resources serve --service handler|resource --listen ADDR --peer ADDR --handler A,B --resource A,B
                         [--role primary|backup|auto] [--node-id ID] [--replication JSON] [--log-level L]
  tandem-resources use   --handler A,B --resource A,B --id ID [--flow 4a|4b] [--count N]
  tandem-resources inspect --resource A,B --id ID
  tandem-resources demo  [--flow 4a|4b] [--rounds N] [--json]

serve        one replica of the resource handler or of the resource; prints JSON-line events
  --handler A,B / --resource A,B   both pairs' addresses (the handler sends to the resource)
  --crash-after-reply N            (testing) SIGKILL itself after replying to its N-th allocation,
                                   before the initialisation message leaves
use          Pro1: allocate resource ID at the handler, then use it at the resource; prints JSON
  --flow 4b    (default) the handler replies at once and initialises concurrently; causal ordering
               makes the resource apply the initialisation before the use
  --flow 4a    the handler replies only after the resource answered the initialisation
inspect      how often ID was initialised and used at the resource, and in which order
demo         both pairs as child processes; Pro1 allocates and uses resources; the handler's primary
             is SIGKILLed mid-flow, after replying and before its message leaves; checks that every
             resource was initialised exactly once and before its use
`;

class UsageError extends Error {
  static override readonly name = 'UsageError';
  override readonly name = 'UsageError';
}

function pair(v: string | undefined, flag: string): readonly [string, string] {
  const parts = (v ?? '').split(',').map((s) => s.trim());
  if (parts.length !== 2 || !parts[0] || !parts[1])
    throw new UsageError(`${flag} needs two addresses, e.g. tcp://127.0.0.1:7001,tcp://127.0.0.1:7002`);
  return [parts[0], parts[1]];
}

function flowOf(v: string | undefined): Flow {
  if (v === undefined || v === '4b') return '4b';
  if (v === '4a') return '4a';
  throw new UsageError(`--flow must be 4a or 4b, got ${v}`);
}

function positive(v: string | undefined, dflt: number, flag: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got ${v}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      service: { type: 'string' },
      listen: { type: 'string' },
      peer: { type: 'string' },
      role: { type: 'string' },
      'node-id': { type: 'string' },
      handler: { type: 'string' },
      resource: { type: 'string' },
      replication: { type: 'string' },
      'log-level': { type: 'string' },
      'crash-after-reply': { type: 'string' },
      id: { type: 'string' },
      flow: { type: 'string' },
      count: { type: 'string' },
      rounds: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  switch (command) {
    case 'serve': {
      const service = values.service;
      if (service !== 'handler' && service !== 'resource' && service !== 'counter' && service !== 'causal-counter')
        throw new UsageError('--service must be handler or resource (or counter / causal-counter, for the benchmark)');
      if (!values.listen || !values.peer) throw new UsageError('serve needs --listen and --peer');
      const role = values.role ?? 'auto';
      if (role !== 'primary' && role !== 'backup' && role !== 'auto') throw new UsageError('--role must be primary, backup or auto');
      const logLevel = values['log-level'] ?? 'warn';
      if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new UsageError(`bad --log-level ${logLevel}`);
      const running = await serve({
        service,
        listen: values.listen,
        peer: values.peer,
        role,
        ...(values['node-id'] ? { nodeId: values['node-id'] } : {}),
        handler: service === 'handler' || service === 'resource' ? pair(values.handler, '--handler') : [values.listen, values.peer],
        resource: service === 'handler' || service === 'resource' ? pair(values.resource, '--resource') : [values.listen, values.peer],
        ...(values.replication ? { replication: JSON.parse(values.replication) as Record<string, number> } : {}),
        logLevel: logLevel as 'warn',
        ...(values['crash-after-reply'] ? { crashAfterReply: positive(values['crash-after-reply'], 1, '--crash-after-reply') } : {}),
      });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await running.stop();
      return 0;
    }
    case 'use': {
      if (!values.id) throw new UsageError('use needs --id');
      const env = nodeEnv({ network: createNetwork() });
      const pro1 = createPro1(env, { handler: pair(values.handler, '--handler'), resource: pair(values.resource, '--resource') });
      const count = positive(values.count, 1, '--count');
      try {
        for (let i = 0; i < count; i++) {
          const id = count === 1 ? values.id : `${values.id}-${i + 1}`;
          const r = await allocateAndUse(pro1, id, flowOf(values.flow), () => env.now());
          process.stdout.write(`${JSON.stringify(r)}\n`);
        }
      } finally {
        await pro1.close();
      }
      return 0;
    }
    case 'inspect': {
      if (!values.id) throw new UsageError('inspect needs --id');
      const env = nodeEnv({ network: createNetwork() });
      const pro1 = createPro1(env, { handler: pair(values.resource, '--resource'), resource: pair(values.resource, '--resource') });
      try {
        process.stdout.write(`${JSON.stringify(await pro1.resource.call({ op: 'inspect', id: values.id }))}\n`);
      } finally {
        await pro1.close();
      }
      return 0;
    }
    case 'demo': {
      const json = values.json === true;
      const result = await runDemo({ flow: flowOf(values.flow), rounds: positive(values.rounds, 10, '--rounds'), json }, (line) => {
        if (!json) process.stdout.write(`${line}\n`);
      });
      if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
      return result.ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (
      err instanceof UsageError ||
      ((err as Error).name === 'TypeError' && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`tandem-resources: ${(err as Error).message}\n\n${HELP}`);
      process.exit(2);
    }
    process.stderr.write(`tandem-resources: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
