/** The doc-example runner's extractor, annotations, expectations and schemas (tools/doc-examples). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkExpectations } from '../expect.js';
import { extractBlocks, parseAnnotation } from '../extract.js';
import { SCHEMAS } from '../schemas.js';
import { notShipped } from '../shipped.js';

const root = join(import.meta.dirname, '..', '..', '..');

const md = [
  '# Title', // 1
  '', // 2
  '```ts', // 3
  "console.log('a'); // expect: a", // 4
  '```', // 5
  '', // 6
  '<!-- doc-example: not-run reason="starts a server; see test/x.test.ts" -->', // 7
  '```sh', // 8
  'serve &', // 9
  '```', // 10
  '', // 11
  '1. a list item:', // 12
  '', // 13
  '   <!-- doc-example: file="cfg.json" schema="kv-shard-map" -->', // 14
  '   ```json', // 15
  '   { "version": 1 }', // 16
  '   ```', // 17
  '', // 18
  '```', // 19
  'a diagram', // 20
  '```', // 21
  '<!-- doc-example: continues -->', // 22
  '````js', // 23
  '```', // 24  (a shorter fence inside a longer one is content)
  '````', // 25
].join('\n');

describe('extractBlocks', () => {
  const blocks = extractBlocks('doc.md', md);

  it('finds every fenced block with its opening line, language and code', () => {
    expect(blocks.map((b) => [b.line, b.lang, b.kind])).toEqual([
      [3, 'ts', 'ts'],
      [8, 'sh', 'sh'],
      [15, 'json', 'json'],
      [19, '', 'unknown'],
      [23, 'js', 'js'],
    ]);
    expect(blocks[4]?.code).toBe('```');
  });

  it('reads the annotation just above a fence, also indented inside a list', () => {
    expect(blocks[0]?.annotation).toEqual({});
    expect(blocks[1]?.annotation.notRun).toBe('starts a server; see test/x.test.ts');
    expect(blocks[2]?.annotation).toEqual({ file: 'cfg.json', schema: 'kv-shard-map' });
    expect(blocks[2]?.code).toBe('{ "version": 1 }'); // the list's indentation is removed
    expect(blocks[4]?.annotation.continues).toBe(true);
  });

  it('collects expect: lines in order', () => {
    expect(blocks[0]?.expects).toEqual(['a']);
    const sh = extractBlocks('x.md', '```sh\necho hi   # expect: hi\necho there # expect: there\n```');
    expect(sh[0]?.expects).toEqual(['hi', 'there']);
    const tail = extractBlocks('x.md', '```js\nsend(); // 406 — then: expect: pro1 use resource\n```');
    expect(tail[0]?.expects).toEqual(['pro1 use resource']); // at the end of a longer comment too
  });
});

describe('parseAnnotation', () => {
  it('refuses what it cannot read, so that a typo never skips a block', () => {
    expect(parseAnnotation(' not-run ').errors).toContain('not-run needs reason="…"');
    expect(parseAnnotation(' not-rn reason="x" ').errors.join()).toMatch(/unknown key "not-rn"/);
    expect(parseAnnotation(' timeout=soon ').errors.join()).toMatch(/whole seconds/);
    expect(parseAnnotation(' file="../x.ts" ').errors.join()).toMatch(/plain file name/);
    expect(parseAnnotation(' source="/etc/passwd" ').errors.join()).toMatch(/inside the repository/);
    expect(parseAnnotation(' cwd="repo" timeout=120 ').annotation).toEqual({ cwd: 'repo', timeoutS: 120 });
    expect(parseAnnotation(' output ').annotation).toEqual({ output: true });
  });

  it('reads needs= (fixtures) and typecheck-only with its prelude', () => {
    expect(parseAnnotation(' needs="xvfb:3,etcd" ').annotation).toEqual({ needs: [{ kind: 'xvfb', count: 3 }, { kind: 'etcd' }] });
    expect(parseAnnotation(' needs="xvfb" ').errors.join()).toMatch(/xvfb:N/);
    expect(parseAnnotation(' needs="postgres" ').errors.join()).toMatch(/xvfb:N \(N 1..8\) or etcd/);
    expect(parseAnnotation(' needs="xvfb:9" ').errors).toHaveLength(1);
    expect(parseAnnotation(' typecheck-only prelude="declare const x: number;" ').annotation).toEqual({
      typecheckOnly: true,
      prelude: 'declare const x: number;',
    });
    expect(parseAnnotation(' prelude="declare const x: number;" ').errors).toContain('prelude= without typecheck-only');
  });
});

describe('checkExpectations', () => {
  it('passes when every text appears in order, and says which one is missing', () => {
    expect(checkExpectations(['a', 'c'], 'a\nb\nc\n')).toEqual([]);
    expect(checkExpectations(['c', 'a'], 'a\nb\nc\n')[0]).toMatch(/"a".*before the previous/);
    expect(checkExpectations(['z'], 'a')[0]).toMatch(/expected "z"/);
  });
});

describe('schemas', () => {
  it('validate with the apps own parsers', () => {
    const map = { version: 1, shards: [{ name: 's1', servers: ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:2'] }] };
    expect(SCHEMAS['kv-shard-map']?.check(map)).toBeUndefined();
    expect(SCHEMAS['kv-shard-map']?.check({ version: 1, shards: [] })).toBeTypeOf('string');
    expect(SCHEMAS['kv-serve-config']?.check({ listen: 'tcp://127.0.0.1:1', peer: 'tcp://127.0.0.1:2' })).toBeUndefined();
    expect(SCHEMAS['kv-serve-config']?.check({ listen: 'tcp://127.0.0.1:1', colour: 'red' })).toBeTypeOf('string');
    expect(SCHEMAS['xconf-config']?.check({ participants: 'none' })).toBeTypeOf('string');
    expect(
      SCHEMAS['prometheus-scrape']?.check({ scrape_configs: [{ job_name: 'kv', static_configs: [{ targets: ['127.0.0.1:9464'] }] }] }),
    ).toBeUndefined();
    expect(
      SCHEMAS['prometheus-scrape']?.check({ scrape_configs: [{ job_name: 'kv', static_configs: [{ targets: ['http://x'] }] }] }),
    ).toBeTypeOf('string');
  });
});

describe('notShipped', () => {
  it('knows which files a package tarball holds (package.json "files")', () => {
    expect(notShipped(root, 'packages/core/examples/tcp-pair.ts')).toBeUndefined(); // docs/WRITING-A-SERVICE.md points at it
    expect(notShipped(root, 'packages/core/test/client.test.ts')).toMatch(/not in packages\/core\/package.json "files"/);
    expect(notShipped(root, 'docs/OPERATIONS.md')).toBeUndefined(); // not inside a package
  });
});
