#!/usr/bin/env node
// Generates packages/xconference/src/generated/xproto.ts from xcb-proto's xproto.xml: for every core
// request, reply and event, the byte offsets of fields that hold resource ids, atoms and visual ids
// (the fields a multi-server proxy must translate), value-list bitcases, lists of ids, and names; and the
// name tables (`Opcode.CreateWindow`, `EventCode.KeyPress`, `ErrorCode.Window`) that code uses instead of
// bare numbers.
//
//   node tools/xproto-gen/generate.mjs [--xml /usr/share/xcb/xproto.xml] [--out path] [--check]
//
// --check regenerates in memory and exits 1 if the committed file differs (for CI).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseXml } from './xml.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const xmlPath = opt('--xml', '/usr/share/xcb/xproto.xml');
const outPath = resolve(opt('--out', resolve(here, '../../packages/xconference/src/generated/xproto.ts')));

if (!existsSync(xmlPath)) {
  console.error(`xproto-gen: ${xmlPath} not found. Install it with: apt-get install -y xcb-proto`);
  process.exit(2);
}

function xcbProtoVersion() {
  const fromEnv = process.env.XCB_PROTO_VERSION;
  if (fromEnv) return fromEnv;
  // xcb-proto installs xcb-proto.pc next to its XML (…/share/xcb/*.xml, …/share/pkgconfig/xcb-proto.pc).
  const pc = resolve(dirname(xmlPath), '../pkgconfig/xcb-proto.pc');
  if (existsSync(pc)) {
    const m = /^Version:\s*(\S+)/m.exec(readFileSync(pc, 'utf8'));
    if (m) return m[1];
  }
  for (const [cmd, argv] of [
    ['pkg-config', ['--modversion', 'xcb-proto']],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
    ['dpkg-query', ['-W', '-f=${Version}', 'xcb-proto']],
  ]) {
    try {
      const v = execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .replace(/-[^-]*$/, '');
      if (v) return v;
    } catch {
      /* try the next source */
    }
  }
  return 'unknown';
}

const root = parseXml(readFileSync(xmlPath, 'utf8')).children.find((n) => n.tag === 'xcb');
const RESOURCE = new Set(['WINDOW', 'PIXMAP', 'CURSOR', 'FONT', 'GCONTEXT', 'COLORMAP', 'ATOM', 'DRAWABLE', 'FONTABLE', 'VISUALID']);
const sizes = new Map(
  Object.entries({ CARD8: 1, INT8: 1, BYTE: 1, BOOL: 1, char: 1, void: 1, CARD16: 2, INT16: 2, CARD32: 4, INT32: 4, float: 4, CARD64: 8 }),
);
const typedefs = new Map();
const enums = new Map();
for (const n of root.children) {
  if (n.tag === 'xidtype') sizes.set(n.attrs.name, 4);
  if (n.tag === 'xidunion') sizes.set(n.attrs.name, 4);
  if (n.tag === 'typedef') typedefs.set(n.attrs.newname, n.attrs.oldname);
  if (n.tag === 'enum') {
    const items = new Map();
    for (const it of n.children.filter((c) => c.tag === 'item')) {
      const bit = it.children.find((c) => c.tag === 'bit');
      const value = it.children.find((c) => c.tag === 'value');
      items.set(it.attrs.name, bit ? 1 << Number(bit.text.trim()) : Number(value?.text.trim() ?? 0));
    }
    enums.set(n.attrs.name, items);
  }
}
const resolveType = (t) => (typedefs.has(t) && !RESOURCE.has(t) ? resolveType(typedefs.get(t)) : t);
function sizeOf(type) {
  const t = resolveType(type);
  if (RESOURCE.has(t)) return 4;
  const s = sizes.get(t);
  if (s === undefined) throw new Error(`unknown type size: ${type}`);
  return s;
}
for (const n of root.children.filter((c) => c.tag === 'struct')) {
  let total = 0;
  for (const f of n.children) {
    if (f.tag === 'field') total += sizeOf(f.attrs.type);
    else if (f.tag === 'pad') total += Number(f.attrs.bytes ?? 0);
    else if (f.tag === 'list') {
      total = NaN; // variable-size struct
      break;
    }
  }
  if (!Number.isNaN(total)) sizes.set(n.attrs.name, total);
}
for (const n of root.children.filter((c) => c.tag === 'union')) {
  let max = 0;
  for (const l of n.children.filter((c) => c.tag === 'list')) {
    const count = Number(l.children.find((c) => c.tag === 'value')?.text.trim() ?? NaN);
    max = Math.max(max, count * sizeOf(l.attrs.type));
  }
  sizes.set(n.attrs.name, max);
}
const kindOf = (type) => (RESOURCE.has(type) ? type : RESOURCE.has(resolveType(type)) ? resolveType(type) : null);

/**
 * Lays out the elements of a request/reply/event body. `headerEnd` is where fields continue after
 * the 1-byte slot at offset 1 (4 for requests and events, 8 for replies); `packed` is true for events
 * without a sequence number (fields run from byte 1).
 */
function layout(elements, headerEnd, packed) {
  const out = { fields: [], resources: [], lists: [], valueList: null, fixedSize: 0 };
  let offset = 1;
  let first = true;
  for (const el of elements) {
    if (!['field', 'pad', 'list', 'switch', 'exprfield'].includes(el.tag)) continue;
    let size;
    if (el.tag === 'field' || el.tag === 'exprfield') size = sizeOf(el.attrs.type);
    else if (el.tag === 'pad') size = el.attrs.bytes !== undefined ? Number(el.attrs.bytes) : null;
    else size = null;
    if (first && !packed) {
      first = false;
      if (size !== 1) offset = headerEnd;
    }
    if (offset < 0) continue; // after a variable-length element: offsets are unknown
    if (el.tag === 'field' || el.tag === 'exprfield') {
      out.fields.push({ name: el.attrs.name, offset, size });
      const kind = kindOf(el.attrs.type);
      if (kind) out.resources.push({ name: el.attrs.name, offset, kind });
    } else if (el.tag === 'list') {
      const kind = kindOf(el.attrs.type);
      const ref = el.children.find((c) => c.tag === 'fieldref');
      const hasExpr = el.children.some((c) => c.tag !== 'fieldref');
      if (kind) {
        const lf = ref && !hasExpr ? out.fields.find((f) => f.name === ref.text.trim()) : null;
        if (ref && !lf) throw new Error(`list ${el.attrs.name}: length field ${ref.text} not found`);
        out.lists.push({ name: el.attrs.name, offset, kind, length: lf ? { offset: lf.offset, size: lf.size } : null });
      }
      offset = -1;
    } else if (el.tag === 'switch') {
      const maskName = el.children.find((c) => c.tag === 'fieldref').text.trim();
      const mask = out.fields.find((f) => f.name === maskName);
      const bits = [];
      for (const bc of el.children.filter((c) => c.tag === 'bitcase')) {
        const ref = bc.children.find((c) => c.tag === 'enumref');
        const f = bc.children.find((c) => c.tag === 'field');
        bits.push({ bit: enums.get(ref.attrs.ref).get(ref.text.trim()), name: f.attrs.name, kind: kindOf(f.attrs.type) });
      }
      out.valueList = { maskOffset: mask.offset, maskSize: mask.size, listOffset: offset, bits };
      offset = -1;
    } else if (size === null) {
      offset = -1; // align pad after a variable element
    }
    if (offset >= 0 && size !== null) {
      offset += size;
      if (offset === 2 && !packed) offset = headerEnd;
    }
  }
  out.fixedSize = offset;
  return out;
}

const requests = [];
for (const n of root.children.filter((c) => c.tag === 'request')) {
  const body = layout(n.children, 4, false);
  const replyNode = n.children.find((c) => c.tag === 'reply');
  const reply = replyNode ? layout(replyNode.children, 8, false) : null;
  requests.push({
    opcode: Number(n.attrs.opcode),
    name: n.attrs.name,
    hasReply: Boolean(replyNode),
    resources: body.resources,
    lists: body.lists,
    valueList: body.valueList,
    reply: reply ? { resources: reply.resources, lists: reply.lists } : null,
  });
}
requests.sort((a, b) => a.opcode - b.opcode);

const eventDefs = new Map();
const events = [];
for (const n of root.children.filter((c) => c.tag === 'event' || c.tag === 'eventcopy')) {
  const def = n.tag === 'event' ? n : eventDefs.get(n.attrs.ref);
  if (n.tag === 'event') eventDefs.set(n.attrs.name, n);
  const packed = def.attrs['no-sequence-number'] === 'true';
  const xge = def.attrs.xge === 'true';
  const body = xge ? { resources: [] } : layout(def.children, 4, packed);
  events.push({ code: Number(n.attrs.number), name: n.attrs.name, hasSequence: !packed, generic: xge, resources: body.resources });
}
events.sort((a, b) => a.code - b.code);
const errors = root.children
  .filter((c) => c.tag === 'error' || c.tag === 'errorcopy')
  .map((n) => ({ code: Number(n.attrs.number), name: n.attrs.name }))
  .sort((a, b) => a.code - b.code);

const json = (v) => JSON.stringify(v);
const lines = [
  '// GENERATED by tools/xproto-gen/generate.mjs from xcb-proto xproto.xml — do not edit by hand.',
  `// Regenerate: node tools/xproto-gen/generate.mjs   (source: ${xmlPath})`,
  '/* eslint-disable */',
  "import type { RequestSpec, EventSpec, ErrorSpec } from '../wire/xproto-types.js';",
  '',
  `/** The xcb-proto version this file was generated from. */`,
  `export const XCB_PROTO_VERSION = ${json(xcbProtoVersion())};`,
  `/** The protocol version xproto.xml describes. */`,
  `export const X_PROTOCOL = { major: ${Number(root.attrs['major-version'] ?? 11)}, minor: ${Number(root.attrs['minor-version'] ?? 0)} } as const;`,
  '',
  '/** Core requests by major opcode (1..127); holes are undefined. */',
  'export const REQUESTS: ReadonlyArray<RequestSpec | undefined> = (() => {',
  '  const table: Array<RequestSpec | undefined> = [];',
  ...requests.map((r) => `  table[${r.opcode}] = ${json(r)};`),
  '  return table;',
  '})();',
  '',
  '/** Core events by code (2..35); 35 is GenericEvent. */',
  'export const EVENTS: ReadonlyArray<EventSpec | undefined> = (() => {',
  '  const table: Array<EventSpec | undefined> = [];',
  ...events.map((e) => `  table[${e.code}] = ${json(e)};`),
  '  return table;',
  '})();',
  '',
  '/** Core errors by code (1..17). */',
  `export const ERRORS: ReadonlyArray<ErrorSpec> = ${json(errors)};`,
  '',
  '/** Major opcode of each core request, by its xproto name. */',
  'export const Opcode = {',
  ...requests.map((r) => `  ${r.name}: ${r.opcode},`),
  '} as const;',
  'export type OpcodeName = keyof typeof Opcode;',
  '',
  '/** Code of each core event, by its xproto name. */',
  'export const EventCode = {',
  ...events.map((e) => `  ${e.name}: ${e.code},`),
  '} as const;',
  'export type EventName = keyof typeof EventCode;',
  '',
  '/** Code of each core error, by its xproto name. */',
  'export const ErrorCode = {',
  ...errors.map((e) => `  ${e.name}: ${e.code},`),
  '} as const;',
  'export type ErrorName = keyof typeof ErrorCode;',
  '',
];
const text = lines.join('\n');
if (args.includes('--check')) {
  const current = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
  if (current !== text) {
    console.error(`xproto-gen: ${outPath} is out of date; run node tools/xproto-gen/generate.mjs`);
    process.exit(1);
  }
  console.log('xproto-gen: up to date');
} else {
  writeFileSync(outPath, text);
  console.log(`xproto-gen: wrote ${requests.length} requests, ${events.length} events, ${errors.length} errors to ${outPath}`);
}
