import { createRegistry } from '@tandem/transport';
import { tcp } from '@tandem/transport-tcp';
import { createReplica, nodeEnv } from '@tandem/core';
import { kv } from '../test/helpers/setup.ts';
const [listen, peer, hint, cfgJson] = process.argv.slice(2);
const env = nodeEnv({ network: createRegistry([tcp()]) });
const r = createReplica({ service: kv, env, listen: listen!, peer: peer!, roleHint: hint as 'primary', config: JSON.parse(cfgJson!) });
await r.start();
process.stdout.write(`ready ${r.status().role}\n`);
process.stdin.on('data', (d) => {
  if (String(d).includes('cpu')) {
    const u = process.cpuUsage();
    process.stdout.write(`cpu ${u.user + u.system}\n`);
  }
});
