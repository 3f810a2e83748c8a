/** `--core-security auto`: on when @tandem/core's replica options offer peer authentication (clusterKeys). */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const coreSrc = resolve(dirname(fileURLToPath(import.meta.url)), '../../../packages/core/src');

export function resolveCoreSecurity(mode: 'auto' | 'on' | 'off'): 'on' | 'off' {
  if (mode !== 'auto') return mode;
  try {
    const found = readdirSync(coreSrc).some((f) => f.endsWith('.ts') && /\bclusterKeys\??:/.test(readFileSync(join(coreSrc, f), 'utf8')));
    return found ? 'on' : 'off';
  } catch {
    return 'off';
  }
}
