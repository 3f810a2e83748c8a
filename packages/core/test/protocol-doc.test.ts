// docs/PROTOCOL.md against the code: its message table lists every message type of the wire schema (and
// nothing else), and its "Errors" section names every error class that @tandem/core exports.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as core from '@tandem/core';

const root = resolve(import.meta.dirname, '..', '..', '..');
const protocol = readFileSync(resolve(root, 'docs', 'PROTOCOL.md'), 'utf8');

/** The lines of the `## ` section whose title starts with `title`, up to the next `## ` heading. */
function section(markdown: string, title: string): string[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`## ${title}`));
  if (start < 0) throw new Error(`docs/PROTOCOL.md has no "## ${title}" section`);
  const end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Every `code` span of a piece of Markdown. */
const codeSpans = (text: string): string[] => [...text.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** The message types named in the first column of the table whose first header cell is "message". */
function documentedMessageTypes(markdown: string): string[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((l) => /^\|\s*message\s*\|/.test(l));
  if (header < 0) throw new Error('docs/PROTOCOL.md has no table whose first column is "message"');
  const names: string[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const first = line.split('|')[1] ?? '';
    names.push(...codeSpans(first));
  }
  return names;
}

/** The wire schema's discriminated union: from the internal entry point where core has one, else the main one. */
async function messageTypes(): Promise<string[]> {
  const pkg = JSON.parse(readFileSync(resolve(root, 'packages', 'core', 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const entry = './internal' in pkg.exports ? '@tandem/core/internal' : '@tandem/core';
  const mod = (await import(entry)) as { messageSchema?: { options: readonly { shape: { t: { value: unknown } } }[] } };
  if (!mod.messageSchema) throw new Error(`${entry} exports no messageSchema`);
  return mod.messageSchema.options.map((o) => String(o.shape.t.value));
}

/** The error classes the package entry exports: name → the class's own `name` (what `err.name` shows). */
function exportedErrorClasses(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [exported, value] of Object.entries(core)) {
    if (typeof value === 'function' && value.prototype instanceof Error) out.set(exported, value.name);
  }
  return out;
}

describe('docs/PROTOCOL.md', () => {
  it('lists every message type of the wire schema in its message table, and no other', async () => {
    const inCode = await messageTypes();
    expect(inCode.length, 'message types found in messageSchema').toBeGreaterThan(0);
    const inDoc = documentedMessageTypes(protocol);
    const missing = inCode.filter((t) => !inDoc.includes(t));
    const unknown = inDoc.filter((t) => !inCode.includes(t));
    expect(missing, 'message types missing from the table in "## Connections and messages"').toEqual([]);
    expect(unknown, 'rows of the message table that are not message types of messageSchema').toEqual([]);
  });

  it('names every error class that @tandem/core exports in its "Errors" section', () => {
    const errors = exportedErrorClasses();
    expect(errors.size, 'error classes exported by @tandem/core').toBeGreaterThan(0);
    const named = new Set(codeSpans(section(protocol, 'Errors').join('\n')));
    const missing = [...errors].filter(([exported, name]) => !named.has(exported) && !named.has(name)).map(([exported]) => exported);
    expect(missing, 'error classes exported by @tandem/core and not named in "## Errors"').toEqual([]);
  });
});
