#!/usr/bin/env node
/**
 * tandem-kv: a replicated key-value store and lock/lease arbiter (client-assisted primary/backup
 * replication, @tandem/core). Commands: serve, rejoin, upgrade, call, demo, load. Exit codes: 0 ok, 1 failed
 * (application error, demo verification failed), 2 usage error, 3 service unavailable.
 */
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ReplicationConfig, ShardMap } from '@tandem/core';
import { callOnce, CALL_COMMANDS, callShardedOnce, parseServers, requestFromWords } from './commands/call.js';
import { describeDemo, runDemo } from './commands/demo.js';
import { runLoad } from './commands/load.js';
import { rejoin } from './commands/rejoin.js';
import { serve } from './commands/serve.js';
import { defaultUpgradeLogDir, parsePids, runUpgradeCli, splitCommand } from './commands/upgrade.js';
import { parseJsonObjectFlag, readCallConfig, readServeConfig, replicationSettings } from './config-file.js';
import { runShardedDemo, describeShardedDemo } from './commands/demo-shards.js';
import { parseShardMap } from './shards.js';
import { UsageError } from './transports.js';
import { witnessFromUrl } from './witness-option.js';
import { runPromote, runStatus } from './commands/operator.js';
import {
  CLIENT_SECURITY_FLAGS,
  CLIENT_SECURITY_HELP,
  clientSecurityFrom,
  keygen,
  REPLICA_SECURITY_FLAGS,
  REPLICA_SECURITY_HELP,
  replicaSecurityFrom,
} from './security-options.js';

const HELP = `tandem-kv — a replicated key-value store and lock/lease arbiter

Usage:
  tandem-kv serve --listen ADDR --peer ADDR [--role primary|backup|auto] [--config FILE] [options]
  tandem-kv rejoin --listen ADDR --peer ADDR [--service-version N] [--timeout MS] [serve options]
  tandem-kv upgrade --servers A,B --pids PA,PB (--exec "CMD" | --service-version N) [--replication JSON]
  tandem-kv call  (--servers ADDR,ADDR | --shards MAP | --config FILE) COMMAND [ARGS…]
  tandem-kv demo  [--json] [--clients N] [--duration S] [--transport tcp] [--history FILE] [--shards N]
  tandem-kv load  --servers ADDR,ADDR --key K [--count N] [--die-after-send I] [--hold]   (scripted client)
  tandem-kv keygen --out FILE [--curve | --client ID] [--force]
  tandem-kv status --servers ADDR,ADDR [--cluster-key-file FILE] [--json]
  tandem-kv promote --server ADDR --accept-loss [--cluster-key-file FILE]

serve                      run one replica; the other runs with --listen/--peer swapped
  --listen ADDR            address for clients and the peer, e.g. tcp://127.0.0.1:7001
  --peer ADDR              the other replica, e.g. tcp://127.0.0.1:7002
  --role R                 primary | backup | auto (default auto: probe the peer first)
  --config FILE            JSON: {listen, peer, role, nodeId, logLevel, replication:{…}}; flags win
  --node-id ID             name in logs (default: the listen address)
  --piggyback MODE         entries | seq-digest      --reply-mode async|sync
  --replication JSON       replication settings, e.g. '{"flushIntervalMs":20}'
  --log-level L            debug | info | warn | error | silent (protocol log on stderr; default warn)
  --service-version N      state version of the kv service: 1 (default) or 2 (values with write
                           metadata); a joining replica migrates an older state (versionedStateSync)
  --state-transfer M       how this replica gets the primary's state when it joins: copy (default: the
                           whole state in one message) | stream (streamed while the primary serves,
                           verified, then joined from there). Every replica serves streams as primary
  --witness URL            etcd://host:port[,host:port…]/prefix (etcds://…?ca=&cert=&key= for TLS): both
                           replicas ask this etcd before serving alone, so a primary/backup partition
                           cannot split the pair (docs/PARTITIONS.md); same URL on both replicas
  --witness-lease-s N      the witness lease in whole seconds (default 2)
  --metrics-listen H:P     serve Prometheus metrics at http://H:P/metrics (config metricsListen), e.g.
                           127.0.0.1:9464; loopback only unless --insecure (the endpoint is unauthenticated)
  --json                   events as JSON lines on stdout
                           (at startup, at every --log-level but silent, one line on stderr gives the
                           failover bound: "tandem-kv: failover bound: process crash ≤ X ms, host crash ≤ Y ms")
${REPLICA_SECURITY_HELP}
rejoin                     start a replica that joins the running primary as backup THROUGH the streaming
                           state transfer: snapshot at seq S while the primary serves, catch-up from its
                           backlog, digests verified equal, then backup (an older state is migrated);
                           progress bar on a terminal, phase lines otherwise; "VERIFIED" when it is a
                           backup whose replies match the primary's, then keeps serving (exit 1 on timeout)
  --timeout MS             give up when not verified within MS (default 60000)

upgrade                    rolling upgrade of a running pair, no failed request: stop the backup, start
                           the new version in its place as backup, stop the old primary (the new backup
                           takes over; clients retry), start the new version at the other address
  --servers A,B            the two replicas
  --pids PA,PB             their process ids, same order (stopped with SIGTERM, SIGKILL after --grace)
  --exec "CMD"             how to start the new version's serve, e.g. "node new/dist/cli.js serve
                           --service-version 2"; --listen/--peer/--role backup/--replication are appended
  --service-version N      instead of --exec: this tandem-kv's serve with --service-version N (and
                           --state-transfer stream: each new replica streams and migrates the state)
  --replication JSON       replication settings for the new replicas (same as the old ones')
  --log-dir DIR            where the new replicas' output goes (default: the temp directory)
  --grace MS               SIGTERM grace period before SIGKILL (default 5000)
  --json                   phases as JSON lines

call                       one request to the logical server; prints the reply as JSON
  --servers A,B            the two replicas
  --shards MAP             instead of --servers: a shard map (JSON file, or inline JSON starting with "{"):
                           {"version":1,"shards":[{"name":"s1","servers":["A1","B1"]},…]}; the request goes
                           to the pair its key hashes to ("{tag}" in a key: routed by the tag; a scan needs a
                           whole "{tag}" in its prefix). See docs/SHARDING.md
  --config FILE            JSON: {servers | shards, timeout, replication:{…}}; flags win
  --timeout MS             give up after MS (default 5000)
${CLIENT_SECURITY_HELP}${CALL_COMMANDS}

demo                       primary + backup as child processes, SIGKILL the primary mid-load,
                           restart it as backup, verify nothing acknowledged was lost or doubled
  --clients N              concurrent clients (default 8)
  --duration S             seconds of load (default 6)
  --transport T            tcp (default) | ws | zmq, when installed
  --history FILE           write the operation history (JSON) for a linearizability check
  --replica-log FILE       append the replicas' protocol log (JSON lines) to FILE
  --json                   one JSON object on stdout instead of the summary
  --shards N               N pairs instead of one (2N processes), keys spread over them by rendezvous
                           hashing; SIGKILL the first pair's primary mid-load: the others serve on, every
                           acknowledged increment is verified on its pair

status                     each replica's role, epoch, seq, backup lag (entries, ms), unacknowledged entries,
                           clients, uptime, version and failover bounds — and, when it cannot serve and
                           cannot prove that nothing acknowledged is lost, why (BLOCKED) and which seqs a
                           promote loses. --json: {"replicas":[…]} with the same fields.
                           Exit 0 every replica answered, none blocked · 1 a replica is blocked, or only
                           some answered · 3 no replica answered
promote                    operator action for a BLOCKED replica: serve now from the state it holds, at a
  --server ADDR            new epoch; acknowledged writes it does not hold are lost (--accept-loss says you
  --accept-loss            accept that). A serving replica is left alone; a backup takes over by itself

keygen                     write a new secret with mode 0600 (refuses to overwrite without --force)
  --out FILE               where; the key is never printed. Default: a cluster key (--cluster-key-file)
  --curve                  a CURVE key pair (--curve-server-keys / --curve-client-keys)
  --client ID              a client key "ID HEXKEY" (--client-key-file; add the line to the replicas'
                           --client-keys-file)

Exit codes: 0 ok · 1 failed (application error / demo found lost or duplicated writes) · 2 usage · 3 unavailable · 4 refused (authentication)
Example:
  tandem-kv keygen --out cluster.key
  tandem-kv serve --listen tcp://127.0.0.1:7001 --peer tcp://127.0.0.1:7002 --role primary --cluster-key-file cluster.key &
  tandem-kv serve --listen tcp://127.0.0.1:7002 --peer tcp://127.0.0.1:7001 --role backup --cluster-key-file cluster.key &
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

function serviceVersionFlag(v: string | undefined): number {
  if (v === undefined) return 1;
  if (v !== '1' && v !== '2') throw new UsageError(`--service-version must be 1 or 2, got ${JSON.stringify(v)}`);
  return Number(v);
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

/** `call`'s logical server: --servers A,B or --shards MAP (flags win over --config FILE). */
function callTarget(values: { servers?: string; shards?: string; config?: string; timeout?: string }): {
  servers: [string, string];
  shards?: ShardMap;
  config: Partial<ReplicationConfig>;
} {
  const file = values.config ? readCallConfig(values.config) : {};
  const fileServers = Array.isArray(file.servers) ? file.servers.join(',') : file.servers;
  let shards: string | Record<string, unknown> | undefined = values.shards ?? (values.servers === undefined ? file.shards : undefined);
  const servers = values.servers ?? (values.shards === undefined ? fileServers : undefined);
  if (servers !== undefined && shards !== undefined)
    throw new UsageError('call takes either --servers A,B (one pair) or --shards MAP (a shard map), not both');
  // A map path in the config file is relative to the file.
  if (values.shards === undefined && typeof shards === 'string' && values.config && !shards.trimStart().startsWith('{'))
    shards = resolve(dirname(values.config), shards);
  const timeout = positiveInt('timeout', values.timeout, file.timeout ?? 5000);
  const config = { ...file.replication, callDeadlineMs: timeout } as Partial<ReplicationConfig>;
  replicationSettings(config); // validate
  if (shards !== undefined)
    return {
      servers: ['', ''],
      shards: parseShardMap(shards, values.shards !== undefined ? '--shards' : `${values.config}: shards`),
      config,
    };
  if (servers === undefined)
    throw new UsageError(
      'call needs --servers A,B (the two replicas, e.g. --servers tcp://127.0.0.1:7001,tcp://127.0.0.1:7002) or --shards MAP (a shard map: JSON file or inline)',
    );
  return { servers: parseServers(servers), config };
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
    case 'serve':
    case 'rejoin': {
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
        'service-version': { type: 'string' },
        witness: { type: 'string' },
        'witness-lease-s': { type: 'string' },
        'metrics-listen': { type: 'string' },
        json: { type: 'boolean' },
        ...REPLICA_SECURITY_FLAGS,
        ...(command === 'rejoin' ? { timeout: { type: 'string' as const } } : { 'state-transfer': { type: 'string' as const } }),
      });
      const file = values.config ? readServeConfig(values.config) : {};
      const listen = values.listen ?? file.listen;
      const peer = values.peer ?? file.peer;
      if (!listen) throw new UsageError('serve needs --listen ADDR (e.g. tcp://127.0.0.1:7001)');
      if (!peer) throw new UsageError('serve needs --peer ADDR (the other replica, e.g. tcp://127.0.0.1:7002)');
      const role = command === 'rejoin' ? 'backup' : (values.role ?? file.role ?? 'auto');
      if (command === 'rejoin' && values.role !== undefined && values.role !== 'backup')
        throw new UsageError('rejoin always joins as backup (drop --role)');
      if (role !== 'primary' && role !== 'backup' && role !== 'auto')
        throw new UsageError(`--role must be primary, backup or auto, got "${role}"`);
      const logLevel = values['log-level'] ?? file.logLevel ?? 'warn';
      if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel))
        throw new UsageError(`--log-level must be debug, info, warn, error or silent`);
      const serviceVersion = serviceVersionFlag(values['service-version']);
      const sec = replicaSecurityFrom(values, file);
      const witnessUrl = values.witness ?? file.witness;
      const kvWitness =
        witnessUrl === undefined
          ? undefined
          : witnessFromUrl(witnessUrl, { leaseTtlS: positiveInt('witness-lease-s', values['witness-lease-s'], 2) });
      const metricsListen = values['metrics-listen'] ?? file.metricsListen;
      const common = {
        ...(kvWitness ? { witness: kvWitness.witness, witnessSummary: kvWitness.summary } : {}),
        ...(metricsListen !== undefined ? { metricsListen } : {}),
        security: sec.security,
        transportSecurity: sec.transport,
        securitySummary: sec.summary,
        listen,
        peer,
        nodeId: values['node-id'] ?? file.nodeId,
        logLevel: logLevel as 'warn',
        replication: replicationSettings(replicationFrom(values, file.replication)),
        json: values.json === true,
        serviceVersion,
      };
      if (command === 'rejoin') {
        const timeout = (values as { timeout?: string }).timeout;
        try {
          await rejoin({ ...common, timeoutMs: positiveInt('timeout', timeout, 60_000) });
        } catch (err) {
          process.stderr.write(`tandem-kv: ${(err as Error).message}\n`);
          return 1;
        }
        return -1; // verified; keep serving as backup until signalled
      }
      const stateTransfer = (values as { 'state-transfer'?: string })['state-transfer'] ?? 'copy';
      if (stateTransfer !== 'stream' && stateTransfer !== 'copy')
        throw new UsageError(`--state-transfer must be stream or copy, got "${stateTransfer}"`);
      await serve({ ...common, role, stateTransfer });
      return -1; // keep running until signalled
    }
    case 'upgrade': {
      const { values } = parse(rest, {
        servers: { type: 'string' },
        pids: { type: 'string' },
        exec: { type: 'string' },
        'service-version': { type: 'string' },
        replication: { type: 'string' },
        'log-dir': { type: 'string' },
        grace: { type: 'string' },
        json: { type: 'boolean' },
      });
      const servers = parseServers(values.servers);
      const pids = parsePids(values.pids);
      if ((values.exec === undefined) === (values['service-version'] === undefined)) {
        throw new UsageError('upgrade needs exactly one of --exec "CMD" or --service-version N');
      }
      const exec =
        values.exec !== undefined
          ? splitCommand(values.exec)
          : [
              process.execPath,
              process.argv[1]!,
              'serve',
              '--state-transfer',
              'stream',
              '--service-version',
              String(serviceVersionFlag(values['service-version'])),
            ];
      if (exec.length === 0) throw new UsageError('--exec is empty');
      const replication = values.replication ? parseJsonObjectFlag('replication', values.replication) : {};
      replicationSettings(replication); // validate
      try {
        await runUpgradeCli({
          servers: [servers[0], servers[1]],
          pids,
          exec,
          replication,
          logDir: values['log-dir'] ?? defaultUpgradeLogDir(),
          json: values.json === true,
          stopGraceMs: positiveInt('grace', values.grace, 5000),
        });
        return 0;
      } catch (err) {
        process.stderr.write(`tandem-kv: upgrade failed: ${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'call': {
      const { values, positionals } = parse(
        rest,
        {
          servers: { type: 'string' },
          shards: { type: 'string' },
          config: { type: 'string' },
          timeout: { type: 'string' },
          ...CLIENT_SECURITY_FLAGS,
        },
        true,
      );
      const target = callTarget(values);
      const request = requestFromWords(positionals);
      const clientSec = clientSecurityFrom(values);
      try {
        const reply =
          target.shards !== undefined
            ? (await callShardedOnce(target.shards, request, target.config, clientSec)).reply
            : await callOnce(target.servers, request, target.config, clientSec);
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
        if (e.name === 'InvalidRequestError') throw new UsageError(e.message);
        if (e.name === 'AuthenticationError') {
          process.stderr.write(`tandem-kv: ${e.message}\n`);
          return 4;
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
        shards: { type: 'string' },
      });
      const replication = replicationFrom(values);
      replicationSettings(replication); // validate before starting anything
      if (values.shards !== undefined) {
        if (values.history !== undefined) throw new UsageError('demo --shards does not record a --history');
        const shards = positiveInt('shards', values.shards, 3);
        if (shards > 16) throw new UsageError('demo --shards: at most 16 pairs (32 processes) on one machine');
        const sharded = await runShardedDemo({
          shards,
          clients: positiveInt('clients', values.clients, 8),
          durationS: positiveNumber('duration', values.duration, 6),
          transport: values.transport ?? 'tcp',
          replicaLog: values['replica-log'],
          replication,
        });
        process.stdout.write((values.json ? JSON.stringify(sharded) : describeShardedDemo(sharded)) + '\n');
        return sharded.ok ? 0 : 1;
      }
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
    case 'status':
    case 'promote': {
      const { values } = parse(rest, {
        servers: { type: 'string' },
        server: { type: 'string' },
        'accept-loss': { type: 'boolean' },
        timeout: { type: 'string' },
        json: { type: 'boolean' },
        'cluster-key-file': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-ca': { type: 'string' },
        'curve-server-keys': { type: 'string' },
      });
      const o = {
        security: replicaSecurityFrom(values),
        timeoutMs: positiveInt('timeout', values.timeout, 5000),
        json: values.json === true,
      };
      if (command === 'status')
        return runStatus(values.servers ? parseServers(values.servers) : values.server ? [values.server] : parseServers(undefined), o);
      if (!values.server) throw new UsageError('promote needs --server ADDR (the blocked replica)');
      if (values['accept-loss'] !== true)
        throw new UsageError('promote loses the acknowledged writes the replica does not hold: pass --accept-loss to confirm');
      return runPromote(values.server, o);
    }
    case 'keygen': {
      const { values } = parse(rest, {
        out: { type: 'string' },
        curve: { type: 'boolean' },
        client: { type: 'string' },
        force: { type: 'boolean' },
      });
      if (!values.out) throw new UsageError('keygen needs --out FILE (the key is never printed)');
      if (values.curve && values.client !== undefined) throw new UsageError('keygen: --curve and --client exclude each other');
      await keygen(
        values.out,
        { ...(values.curve ? { curve: true } : {}), ...(values.client !== undefined ? { client: values.client } : {}) },
        values.force === true,
      );
      process.stderr.write(
        `tandem-kv: wrote ${values.curve ? 'a CURVE key pair' : values.client !== undefined ? `client key "${values.client}"` : 'a cluster key'} to ${values.out} (mode 0600)\n`,
      );
      return 0;
    }
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
