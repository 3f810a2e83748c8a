/**
 * Finds the fenced code blocks of a Markdown file and the `<!-- doc-example: … -->` annotation right above
 * each one. Pure functions (no I/O): tools/doc-examples/main.ts reads the files and runs the blocks.
 *
 * Annotation (an HTML comment on the line(s) just above the fence; a blank line between is allowed):
 *   <!-- doc-example: not-run reason="starts a long-running server; run by apps/kv/test/…" -->
 *   <!-- doc-example: file="counter.ts" -->            the block's file name in the document's work folder
 *   <!-- doc-example: cwd="repo" timeout=120 -->         sh: run at the repository root; seconds before a kill
 *   <!-- doc-example: schema="kv-shard-map" -->          json: validated by the named schema
 *   <!-- doc-example: file="x.service" schema="systemd-unit" -->  ini: checked by systemd-analyze verify
 *   <!-- doc-example: source="packages/core/examples/tcp-pair.ts" -->  the block must equal that file
 *   <!-- doc-example: output -->                         a text block: what the previous code block prints
 *                                                        (every non-blank line, in order)
 *   <!-- doc-example: continues -->                      runs after the previous code block of the document,
 *                                                        as one program (a fragment that uses its names)
 *   <!-- doc-example: needs="xvfb:3,etcd" -->           fixtures the runner starts before the block and stops
 *                                                        (by pid) after it: `xvfb:N` N Xvfb servers on free
 *                                                        displays ($DISPLAY_1…$DISPLAY_N; $FREE_DISPLAY and
 *                                                        $FREE_DISPLAY_2, free numbers for a daemon to listen
 *                                                        on; a private $XDG_RUNTIME_DIR); `etcd` a
 *                                                        single-member etcd ($ETCD = etcd://127.0.0.1:PORT,
 *                                                        $ETCD_ENDPOINT = 127.0.0.1:PORT)
 *   <!-- doc-example: typecheck-only prelude="declare const env: Env;" -->  ts: passes tsc --strict, not run
 *                                                        (an option listing, a skeleton); `prelude` is code
 *                                                        put before the block for the check only
 * Expectations live in the code: a comment ending in `expect: TEXT` (`// … expect: TEXT` in ts/js, `# …`
 * in sh) — every TEXT must appear in the block's stdout, in that order.
 */

export type BlockKind = 'ts' | 'js' | 'sh' | 'json' | 'yaml' | 'ini' | 'text' | 'unknown';

export interface Annotation {
  /** Set when the block is deliberately not run: the reason is printed with it. */
  notRun?: string;
  file?: string;
  cwd?: 'repo' | 'tmp';
  timeoutS?: number;
  schema?: string;
  /** A repository file the block must be identical to (an example shipped in a package). */
  source?: string;
  /** The block is the continuation of the previous code block of its document. */
  continues?: boolean;
  /** A text block that is the previous code block's output: each non-blank line must be printed, in order. */
  output?: boolean;
  /** Fixtures started for the block (tools/doc-examples/fixtures.ts). */
  needs?: Need[];
  /** ts: type-checked (tsc --strict), not executed. */
  typecheckOnly?: boolean;
  /** ts: code put before the block for the type check (declarations of the reader's own names). */
  prelude?: string;
}

export type Need = { kind: 'xvfb'; count: number } | { kind: 'etcd' };

/** `xvfb:3,etcd` → the fixtures; undefined (and an error) when it cannot be read. */
export function parseNeeds(value: string | undefined, errors: string[]): Need[] | undefined {
  const out: Need[] = [];
  for (const item of (value ?? '').split(',')) {
    const m = /^xvfb:([1-8])$/.exec(item.trim());
    if (m) out.push({ kind: 'xvfb', count: Number(m[1]) });
    else if (item.trim() === 'etcd') out.push({ kind: 'etcd' });
    else {
      errors.push(`needs="${value}": each of a comma-separated list must be xvfb:N (N 1..8) or etcd`);
      return undefined;
    }
  }
  return out;
}

export interface Block {
  /** The Markdown file, relative to the repository root. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string, first word (`ts`, `sh`, …; '' when none). */
  lang: string;
  kind: BlockKind;
  code: string;
  annotation: Annotation;
  /** What the annotation could not parse (reported as a failure: a typo must not skip a block). */
  annotationErrors: string[];
  /** `expect:` lines of the code, in order. */
  expects: string[];
}

const KINDS: Record<string, BlockKind> = {
  ts: 'ts',
  typescript: 'ts',
  js: 'js',
  javascript: 'js',
  mjs: 'js',
  sh: 'sh',
  bash: 'sh',
  shell: 'sh',
  json: 'json',
  yaml: 'yaml',
  yml: 'yaml',
  ini: 'ini',
  systemd: 'ini',
  text: 'text',
  txt: 'text',
};

export function kindOf(lang: string): BlockKind {
  return KINDS[lang.toLowerCase()] ?? 'unknown';
}

const ANNOTATION = /<!--\s*doc-example:([\s\S]*?)-->/;
const PAIR = /([a-z-]+)(?:=(?:"([^"]*)"|(\S+)))?/g;

export function parseAnnotation(text: string): { annotation: Annotation; errors: string[] } {
  const annotation: Annotation = {};
  const errors: string[] = [];
  const rest = text.replace(PAIR, (_m, key: string, quoted: string | undefined, bare: string | undefined) => {
    const value = quoted ?? bare;
    switch (key) {
      case 'not-run':
        break;
      case 'continues':
        annotation.continues = true;
        break;
      case 'output':
        annotation.output = true;
        break;
      case 'typecheck-only':
        annotation.typecheckOnly = true;
        break;
      case 'prelude':
        if (value) annotation.prelude = value;
        else errors.push('prelude needs code');
        break;
      case 'needs': {
        const needs = parseNeeds(value, errors);
        if (needs) annotation.needs = needs;
        break;
      }
      case 'source':
        if (value === undefined || value.startsWith('/') || value.includes('..'))
          errors.push(`source="${value}" must be a path inside the repository`);
        else annotation.source = value;
        break;
      case 'reason':
        annotation.notRun = value ?? '';
        break;
      case 'file':
        if (value === undefined || !/^[\w.@-]+\.(ts|mts|js|mjs|json|sh|service)$/.test(value))
          errors.push(`file="${value}" is not a plain file name`);
        else annotation.file = value;
        break;
      case 'cwd':
        if (value === 'repo' || value === 'tmp') annotation.cwd = value;
        else errors.push(`cwd must be "repo" or "tmp", not "${value}"`);
        break;
      case 'timeout':
        if (value !== undefined && /^\d+$/.test(value)) annotation.timeoutS = Number(value);
        else errors.push(`timeout must be whole seconds, not "${value}"`);
        break;
      case 'schema':
        if (value) annotation.schema = value;
        else errors.push('schema needs a name');
        break;
      default:
        errors.push(`unknown key "${key}"`);
    }
    return '';
  });
  if (rest.trim() !== '') errors.push(`could not read "${rest.trim()}"`);
  if (/\bnot-run\b/.test(text) && !annotation.notRun) errors.push('not-run needs reason="…"');
  if (annotation.notRun !== undefined && !/\bnot-run\b/.test(text)) errors.push('reason= without not-run');
  if (annotation.prelude !== undefined && !annotation.typecheckOnly) errors.push('prelude= without typecheck-only');
  return { annotation, errors };
}

export function expectationsOf(code: string, kind: BlockKind): string[] {
  const marker = kind === 'sh' ? /#.*?\bexpect:\s?(.*)$/ : kind === 'ts' || kind === 'js' ? /\/\/.*?\bexpect:\s?(.*)$/ : undefined;
  if (marker === undefined) return [];
  const out: string[] = [];
  for (const l of code.split('\n')) {
    const m = marker.exec(l);
    if (m?.[1] !== undefined) out.push(m[1].trimEnd());
  }
  return out;
}

/** Every fenced block of `markdown` (``` or ~~~ fences, indented ones inside lists too). */
export function extractBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/.exec(lines[i] ?? '');
    if (!open) {
      i++;
      continue;
    }
    const indent = open[1]?.length ?? 0;
    const fence = open[2] ?? '```';
    const lang = open[3] ?? '';
    const start = i;
    const body: string[] = [];
    i++;
    while (i < lines.length) {
      const l = lines[i] ?? '';
      const close = /^(\s*)(`{3,}|~{3,})\s*$/.exec(l);
      if (close && close[2]?.[0] === fence[0] && (close[2]?.length ?? 0) >= fence.length) break;
      body.push(l.slice(Math.min(indent, l.length - l.trimStart().length)));
      i++;
    }
    i++; // past the closing fence
    // The annotation: the nearest non-blank lines above the fence, if they end an HTML comment.
    let j = start - 1;
    while (j >= 0 && (lines[j] ?? '').trim() === '') j--;
    let annotationText = '';
    if (j >= 0 && (lines[j] ?? '').trim().endsWith('-->')) {
      let k = j;
      while (k >= 0 && !(lines[k] ?? '').includes('<!--')) k--;
      const comment = lines.slice(Math.max(k, 0), j + 1).join('\n');
      const m = ANNOTATION.exec(comment);
      if (m) annotationText = m[1] ?? '';
    }
    const { annotation, errors } = parseAnnotation(annotationText);
    const kind = kindOf(lang);
    const code = body.join('\n');
    blocks.push({
      file,
      line: start + 1,
      lang,
      kind,
      code,
      annotation,
      annotationErrors: errors,
      expects: expectationsOf(code, kind),
    });
  }
  return blocks;
}
