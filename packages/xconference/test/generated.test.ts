import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS, ErrorCode, EventCode, EVENTS, Opcode, REQUESTS } from '../src/generated/xproto.js';

const XML = '/usr/share/xcb/xproto.xml';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const haveXml = existsSync(XML);
if (!haveXml) {
  const msg = `${XML} is missing: install it with apt-get install -y xcb-proto`;
  if (process.env.CI === 'true') {
    describe('xproto-gen prerequisites', () => it('has xcb-proto', () => expect.fail(msg)));
  } else console.warn(`\n*** SKIPPING the generator check — ${msg}\n`);
}

describe.skipIf(!haveXml)('tools/xproto-gen', () => {
  it('the committed tables are what the generator produces from xcb-proto', () => {
    const out = execFileSync(process.execPath, [resolve(root, 'tools/xproto-gen/generate.mjs'), '--check'], { encoding: 'utf8' });
    expect(out).toMatch(/up to date/);
  });
});

describe('generated tables', () => {
  it('know the layout of well-known requests and events', () => {
    expect(REQUESTS[1]!.resources.map((f) => [f.name, f.offset])).toEqual([
      ['wid', 4],
      ['parent', 8],
      ['visual', 24],
    ]);
    expect(REQUESTS[12]!.valueList).toMatchObject({ maskOffset: 8, maskSize: 2, listOffset: 12 });
    expect(REQUESTS[15]!.reply!.lists[0]).toMatchObject({ name: 'children', offset: 32, length: { offset: 16, size: 2 } });
    expect(EVENTS[11]!.hasSequence).toBe(false);
    expect(EVENTS[35]!.generic).toBe(true);
    expect(EVENTS[2]!.resources.map((f) => f.offset)).toEqual([8, 12, 16]);
  });

  it('name every request, event and error by its xproto name', () => {
    expect(
      Object.entries(Opcode)
        .map(([name, op]) => REQUESTS[op]?.name === name)
        .every(Boolean),
    ).toBe(true);
    expect(Object.keys(Opcode).length).toBe(REQUESTS.filter(Boolean).length);
    expect(
      Object.entries(EventCode)
        .map(([name, code]) => EVENTS[code]?.name === name)
        .every(Boolean),
    ).toBe(true);
    expect(Object.keys(EventCode).length).toBe(EVENTS.filter(Boolean).length);
    expect(Object.entries(ErrorCode)).toEqual(ERRORS.map((e) => [e.name, e.code]));
    expect([Opcode.CreateWindow, Opcode.InternAtom, Opcode.NoOperation, EventCode.KeyPress, ErrorCode.Window]).toEqual([1, 16, 127, 2, 3]);
  });
});
