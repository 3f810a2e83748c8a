#!/usr/bin/env node
/**
 * tandem-kv: a replicated key-value store and lock/lease arbiter (client-assisted primary/backup
 * replication, @tandem/core). Commands: serve, call, demo, load. Exit codes: 0 ok, 1 failed
 * (application error, demo verification failed), 2 usage error, 3 service unavailable.
 */
import { parseArgs } from 'node:util';
import { callOnce, CALL_COMMANDS, parseServers, requestFromWords } from './commands/call.js';
import { describeDemo, runDemo } from './commands/demo.js';
import { runLoad } from './commands/load.js';
import { serve } from './commands/serve.js';
import { parseJsonObjectFlag, readServeConfig, replicationSettings } from './config-file.js';
import { UsageError } from './transports.js';

const HELP = `tandem-kv — a replicated key-value store and lock/lease arbiter

Usage:
  tandem-kv serve --listen ADDR --peer ADDR [--role primary|backup|auto] [--config FILE] [options]
  tandem-kv call  --servers ADDR,ADDR COMMAND [ARGS…]
  tandem-kv demo  [--json] [--clients N] [--duration S] [--transport tcp] [--history FILE]
  tandem-kv load  --servers ADDR,ADDR --key K [--count N] [--die-after-send I] [--hold]   (scripted client)

serve                      run one replica; the other runs with --listen/--peer swapped
  --listen ADDR            address for clients and the peer, e.g. tcp://127.0.0.1:7001
  --peer ADDR              the other replica, e.g. tcp://127.0.0.1:7002
  --role R                 primary | backup | auto (default auto: probe the peer first)
  --config FILE            JSON: {listen, peer, role, nodeId, logLevel, replication:{…}}; flags win
  --node-id ID             name in logs (default: the listen address)
  --piggyback MODE         entries | seq-digest      --reply-mode async|sync
  --replication JSON       replication settings, e.g. '{"flushIntervalMs":20}'
  --log-level L            debug | info | warn | error | silent (protocol log on stderr; default warn)
  --json                   events as JSON lines on stdout

call                       one request to the logical server; prints the reply as JSON
  --servers A,B            the two replicas
  --timeout MS             give up after MS (default 5000)
${CALL_COMMANDS}

demo                       primary + backup as child processes, SIGKILL the primary mid-load,
                           restart it as backup, verify nothing acknowledged was lost or doubled
  --clients N              concurrent clients (default 8)
  --duration S             seconds of load (default 6)
  --transport T            tcp (default) | ws | zmq, when installed
  --history FILE           write the operation history (JSON) for a linearizability check
  --replica-log FILE       append the replicas' protocol log (JSON lines) to FILE
  --json                   one JSON object on stdout instead of the summary

Exit codes: 0 ok · 1 failed (application error / demo found lost or duplicated writes) · 2 usage · 3 unavailable
Example:
  tandem-kv serve --listen tcp://127.0.0.1:7001 --peer tcp://127.0.0.1:7002 --role primary &
  tandem-kv serve --listen tcp://127.0.0.1:7002 --peer tcp://127.0.0.1:7001 --role backup &
  tandem-kv call --servers tcp://127.0.0.1:7001,tcp://127.0.0.1:7002 set greeting hello
`;

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) <= 0) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

function positiveNumber(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got ${JSON.stringify(v)}`);
  return n;
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], options: T, positionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals: positionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function replicationFrom(values: Record<string, unknown>, base: Record<string, unknown> = {}): Record<string, unknown> {
  const r: Record<string, unknown> = { ...base };
  if (typeof values.replication === 'string') Object.assign(r, parseJsonObjectFlag('replication', values.replication));
  if (typeof values.piggyback === 'string') r.piggyback = values.piggyback;
  if (typeof values['reply-mode'] === 'string') r.replyMode = values['reply-mode'];
  return r;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    case 'serve': {
      const { values } = parse(rest, {
        listen: { type: 'string' },
        peer: { type: 'string' },
        role: { type: 'string' },
        config: { type: 'string' },
        'node-id': { type: 'string' },
        piggyback: { type: 'string' },
        'reply-mode': { type: 'string' },
        replication: { type: 'string' },
        'log-level': { type: 'string' },
        json: { type: 'boolean' },
      });
      const file = values.config ? readServeConfig(values.config) : {};
      const listen = values.listen ?? file.listen;
      const peer = values.peer ?? file.peer;
      if (!listen) throw new UsageError('serve needs --listen ADDR (e.g. tcp://127.0.0.1:7001)');
      if (!peer) throw new UsageError('serve needs --peer ADDR (the other replica, e.g. tcp://127.0.0.1:7002)');
      const role = values.role ?? file.role ?? 'auto';
      if (role !== 'primary' && role !== 'backup' && role !== 'auto') throw new UsageError(`--role must be primary, backup or auto, got "${role}"`);
      const logLevel = values['log-level'] ?? file.logLevel ?? 'warn';
      if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new UsageError(`--log-level must be debug, info, warn, error or silent`);
      await serve({
        listen,
        peer,
        role,
        nodeId: values['node-id'] ?? file.nodeId,
        logLevel: logLevel as 'warn',
        replication: replicationSettings(replicationFrom(values, file.replication)),
        json: values.json === true,
      });
      return -1; // keep running until signalled
    }
    case 'call': {
      const { values, positionals } = parse(rest, { servers: { type: 'string' }, timeout: { type: 'string' } }, true);
      const servers = parseServers(values.servers);
      const request = requestFromWords(positionals);
      const timeout = positiveInt('timeout', values.timeout, 5000);
      try {
        const reply = await callOnce(servers, request, { callDeadlineMs: timeout });
        process.stdout.write(JSON.stringify(reply) + '\n');
        return 0;
      } catch (err) {
        const e = err as Error & { remoteName?: string; remoteMessage?: string };
        if (e.name === 'ApplicationError') {
          process.stdout.write(JSON.stringify({ error: e.remoteName, message: e.remoteMessage }) + '\n');
          return 1;
        }
        if (e.name === 'ServiceUnavailableError') {
          process.stderr.write(`tandem-kv: ${e.message}\n`);
          return 3;
        }
        throw err;
      }
    }
    case 'demo': {
      const { values } = parse(rest, {
        json: { type: 'boolean' },
        clients: { type: 'string' },
        duration: { type: 'string' },
        transport: { type: 'string' },
        history: { type: 'string' },
        'replica-log': { type: 'string' },
        piggyback: { type: 'string' },
        'reply-mode': { type: 'string' },
        replication: { type: 'string' },
      });
      const replication = replicationFrom(values);
      replicationSettings(replication); // validate before starting anything
      const result = await runDemo({
        json: values.json === true,
        clients: positiveInt('clients', values.clients, 8),
        durationS: positiveNumber('duration', values.duration, 6),
        transport: values.transport ?? 'tcp',
        history: values.history,
        replicaLog: values['replica-log'],
        replication,
      });
      if (values.json) process.stdout.write(JSON.stringify(result) + '\n');
      else process.stdout.write(describeDemo(result) + '\n');
      return result.ok ? 0 : 1;
    }
    case 'load':
      return runLoad(rest, parse);
    default:
      throw new UsageError(`unknown command "${command}" (try: tandem-kv help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) {
      process.exitCode = code;
      // Child processes and sockets are closed by now; do not wait on stray timers.
      setTimeout(() => process.exit(code), 100).unref();
    }
  },
  (err: Error) => {
    if (err.name === 'UsageError') {
      process.stderr.write(`tandem-kv: ${err.message}\n(run "tandem-kv help" for usage)\n`);
      process.exit(2);
    }
    process.stderr.write(`tandem-kv: ${err.name}: ${err.message}\n`);
    process.exit(1);
  },
);
