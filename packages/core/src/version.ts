/**
 * The version of @tandem/core, read once from its package.json (one level above both src/ and dist/), so a
 * release that bumps the version needs no second edit. Reported in a replica's status.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** This @tandem/core's version ("0.1.0"), or "unknown" when its package.json cannot be read (a bundle). */
export function coreVersion(): string {
  if (cached === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      cached = pkg.name === '@tandem/core' && typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
