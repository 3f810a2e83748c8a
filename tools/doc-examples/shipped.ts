import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** A `source` inside a package must be in the package's tarball (its package.json "files"): the docs
 * point users at it. undefined when shipped (or not inside a package). */
export function notShipped(root: string, src: string): string | undefined {
  const m = /^((?:packages|apps)\/[^/]+)\/(.+)$/.exec(src);
  if (!m) return undefined;
  const dir = m[1] as string;
  const rel = m[2] as string;
  const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as { files?: string[] };
  if (pkg.files === undefined) return undefined; // everything is packed
  const covers = (entry: string): boolean => rel === entry || rel.startsWith(`${entry.replace(/\/$/, '')}/`);
  const shipped = pkg.files.some((e) => !e.startsWith('!') && covers(e)) && !pkg.files.some((e) => e.startsWith('!') && covers(e.slice(1)));
  return shipped ? undefined : `${src} is not in ${dir}/package.json "files": the published package does not ship what the docs point at`;
}
