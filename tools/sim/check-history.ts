#!/usr/bin/env node
/**
 * Check a recorded key-value history (e.g. from `tandem-kv demo --history FILE`) for linearizability.
 *
 *   node --conditions=@tandem/source --import tsx tools/sim/check-history.ts FILE
 *   npm run sim -- check-history FILE
 *
 * Exit code: 0 linearizable, 1 not linearizable (or undecided), 2 unreadable / malformed file.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { checkKvHistory, parseKvHistory } from '@tandem/testkit';

export async function checkHistoryFile(file: string): Promise<number> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    console.error(`check-history: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  let history;
  try {
    history = parseKvHistory(json);
  } catch (err) {
    console.error(`check-history: ${file} is not a key-value history: ${(err as Error).message}`);
    return 2;
  }
  const started = performance.now();
  const report = checkKvHistory(history);
  const ms = performance.now() - started;
  const unknown = history.filter((h) => h.return === undefined).length;
  console.log(
    `${file}: ${history.length} operations (${unknown} with unknown outcome), ${report.keys.length} keys, checked in ${ms.toFixed(0)} ms`,
  );
  for (const k of report.keys) console.log(`  key ${JSON.stringify(k.key)}: ${k.verdict} (${k.operations} ops, ${k.steps} steps)`);
  if (report.verdict === 'linearizable') {
    console.log('LINEARIZABLE');
    return 0;
  }
  console.log(report.verdict === 'unknown' ? 'UNDECIDED (search budget exhausted)' : 'NOT LINEARIZABLE');
  if (report.failure?.explanation) console.log(report.failure.explanation);
  return 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (!file || process.argv.length !== 3) {
    console.error('usage: check-history FILE');
    process.exit(2);
  }
  process.exit(await checkHistoryFile(file));
}
