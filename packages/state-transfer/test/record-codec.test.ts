import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { ChunkBufferPool, ChunkProducer } from '../src/protocol/chunk-producer.js';
import { pack } from '../src/codec.js';
import { decodeMessage, encodeMessage, type ChunkMsg } from '../src/protocol/messages.js';
import {
  decodeRecordSlices,
  encodeRecordSlice,
  encodeRecordSliceInto,
  isPackedSlice,
  isTextSlice,
  sliceItems,
} from '../src/maps/record-codec.js';
import { SlabMap } from '../src/maps/slab-map.js';
import { SnapshotMap } from '../src/maps/snapshot-map.js';

const concat = (parts: Uint8Array[]): Buffer => Buffer.concat(parts);

describe('record slices (chunk encoding)', () => {
  it('an all-ASCII-string slice travels as a text slice and decodes to the same items', () => {
    const items = ['k1', 'short', 'key:2', 'v'.repeat(100), '', 'x'];
    const bytes = encodeRecordSlice(items);
    expect(bytes[0]).toBe(0xc1);
    const [slice] = decodeRecordSlices(bytes);
    expect(isTextSlice(slice!)).toBe(true);
    expect(sliceItems(slice!)).toEqual(items);
  });

  it('non-strings and non-ASCII text fall back to a framed msgpack slice; mixed slices in one chunk decode in order', () => {
    const a = ['k', { n: 1 }, 'k2', [1, 2]];
    const b = ['clé', 'värde', 'k', '日本'];
    const c = ['plain', 'ascii'];
    const chunk = concat([encodeRecordSlice(a), encodeRecordSlice(b), encodeRecordSlice(c)]);
    const slices = decodeRecordSlices(chunk);
    expect(slices.map((s) => isTextSlice(s))).toEqual([false, false, true]);
    expect(slices.map(sliceItems)).toEqual([a, b, c]);
  });

  it('decodes the legacy layout (msgpack arrays back to back) for a joiner talking to an older server', () => {
    const legacy = concat([pack(['a', '1', 'b', '2']), pack(['c', { v: 3 }])]);
    expect(decodeRecordSlices(legacy).map(sliceItems)).toEqual([
      ['a', '1', 'b', '2'],
      ['c', { v: 3 }],
    ]);
    expect(encodeRecordSlice(['a', '1'], false)).toEqual(pack(['a', '1']));
  });

  it('encodeRecordSliceInto writes the same bytes in place and reports when a slice does not fit', () => {
    const items = ['key:1', 'value-1', 'key:2', 'value-2'];
    const one = encodeRecordSlice(items);
    const target = Buffer.alloc(one.length * 2 + 2); // room for one slice at 3, not a second
    const end1 = encodeRecordSliceInto(items, target, 3);
    expect(end1).toBe(3 + one.length);
    expect(target.subarray(3, end1)).toEqual(Buffer.from(one));
    expect(encodeRecordSliceInto(items, target, end1)).toBe(-1);
    const objects = [{ a: 1 }, 'x'];
    const small = Buffer.alloc(64);
    const end2 = encodeRecordSliceInto(objects, small, 0);
    expect(decodeRecordSlices(small.subarray(0, end2)).map(sliceItems)).toEqual([objects]);
  });

  it('a non-ASCII string late in a slice written in place (after ASCII ones were) still gives the msgpack slice', () => {
    // Each string is written into the chunk buffer as it comes; the first that is not ASCII (é: 2 bytes,
    // Ā: would alias "\0" in latin1, an emoji: a surrogate pair) must turn the whole slice into msgpack.
    for (const odd of ['café', 'Ā', 'x😀y']) {
      const items = ['key:1', 'value-1', 'key:2', odd];
      const target = Buffer.alloc(256, 0xee);
      const end = encodeRecordSliceInto(items, target, 5);
      const slices = decodeRecordSlices(target.subarray(5, end));
      expect(slices.map((x) => isTextSlice(x))).toEqual([false]);
      expect(slices.map(sliceItems)).toEqual([items]);
      expect(target.subarray(5, end)).toEqual(Buffer.from(encodeRecordSlice(items)));
    }
    // Empty strings are ASCII too.
    const withEmpty = ['', 'v', 'k', ''];
    expect(decodeRecordSlices(encodeRecordSlice(withEmpty)).map(sliceItems)).toEqual([withEmpty]);
  });

  it('malformed chunks are RangeErrors, never a crash or a silent wrong result', () => {
    const good = Buffer.from(encodeRecordSlice(['abc', 'def']));
    expect(() => decodeRecordSlices(good.subarray(0, good.length - 1))).toThrow(RangeError);
    const badKind = Buffer.from(good);
    badKind[1] = 9;
    expect(() => decodeRecordSlices(badKind)).toThrow(/unknown slice kind/);
    const badLength = Buffer.from(good);
    badLength.writeUInt32LE(1000, 6 + 4); // first item's length
    expect(() => decodeRecordSlices(badLength)).toThrow(RangeError);
    const notAscii = Buffer.from(good);
    notAscii[notAscii.length - 1] = 0xe9;
    expect(() => decodeRecordSlices(notAscii)).toThrow(/not ASCII/);
    expect(() => decodeRecordSlices(Buffer.concat([good, Buffer.from([0x92])]))).toThrow(RangeError);
  });
});

describe('SnapshotMap built from text slices', () => {
  it('has the same contents and digest as the same records written with set(), ASCII or not', () => {
    const direct = new SnapshotMap<string>();
    const slices: Uint8Array[] = [];
    let flat: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const k = `key:${i}`;
      const v = i % 97 === 0 ? `é-${i}` : `${'v'.repeat(i % 150)}${i}`;
      direct.set(k, v);
      flat.push(k, v);
      if (flat.length >= 200) {
        slices.push(encodeRecordSlice(flat));
        flat = [];
      }
    }
    slices.push(encodeRecordSlice(flat));
    const builder = SnapshotMap.builder<string>();
    let text = 0;
    for (const s of decodeRecordSlices(Buffer.concat(slices))) {
      if (isTextSlice(s)) {
        text++;
        builder.addText!(s);
      } else builder.add(sliceItems(s));
    }
    const built = builder.finish();
    expect(text).toBeGreaterThan(0);
    expect(built.size).toBe(direct.size);
    expect(built.digest()).toBe(direct.digest());
    expect(built.get('key:1234')).toBe(direct.get('key:1234'));
    expect(built.get('key:97')).toBe('é-97');
    // The digest keeps tracking writes made after the bulk build.
    built.set('key:5', 'changed');
    direct.set('key:5', 'changed');
    built.delete('key:6');
    direct.delete('key:6');
    expect(built.digest()).toBe(direct.digest());
  });

  it('rejects a repeated key and an odd item count in a text slice', () => {
    const dup = decodeRecordSlices(encodeRecordSlice(['a', '1', 'b', '2', 'a', '3']))[0]!;
    expect(() => SnapshotMap.builder<string>().addText!(dup as never)).toThrow(/repeat the key "a"/);
    const odd = decodeRecordSlices(encodeRecordSlice(['a', '1', 'b']))[0]!;
    expect(() => SnapshotMap.builder<string>().addText!(odd as never)).toThrow(TypeError);
  });
});

describe('ChunkProducer', () => {
  it('pooled chunks encode in place to the message encodeMessage gives, and released buffers are reused', async () => {
    const map = new SnapshotMap<string>();
    for (let i = 0; i < 5000; i++) map.set(`key:${i}`, `value-${'x'.repeat(i % 40)}-${i}`);
    const env = { now: () => 0, setTimer: () => ({ cancel() {} }), yieldNow: () => Promise.resolve() } as never;
    const captured = { seq: 1, epoch: 1, version: 1, body: { format: 'records' as const, cursor: map.snapshot() } };
    const producer = new ChunkProducer(env, 'tid', captured, {
      chunkBytes: 16 * 1024,
      sliceBytes: 4 * 1024,
      sliceMs: 0,
      framedSlices: true,
    });
    const rebuilt = SnapshotMap.builder<string>();
    const buffers = new Set<ArrayBufferLike>();
    let chunks = 0;
    for (let c = await producer.next(); c; c = await producer.next()) {
      const inPlace = producer.encode(c);
      expect(inPlace.buffer).toBe(c.data.buffer); // no copy of the data
      const m = decodeMessage(inPlace);
      const ref = decodeMessage(encodeMessage(c));
      if (m.t !== 'chunk' || ref.t !== 'chunk') throw new Error('not a chunk');
      const { data, ...fields } = m;
      const { data: refData, ...refFields } = ref;
      expect(fields).toEqual(refFields);
      expect(Buffer.compare(data, refData)).toBe(0);
      for (const s of decodeRecordSlices(m.data)) rebuilt.add(sliceItems(s));
      buffers.add(c.data.buffer);
      producer.release(c);
      chunks++;
    }
    expect(chunks).toBeGreaterThan(5);
    expect(buffers.size).toBe(1); // each chunk reused the buffer the previous one released
    expect(rebuilt.finish().digest()).toBe(map.digest());
  });

  it('producers sharing a ChunkBufferPool (one server, one transfer after another) start on the buffers the last one released', async () => {
    const map = new SlabMap({ slabBytes: 64 * 1024 });
    for (let i = 0; i < 5_000; i++) map.set(`key:${i}`, `value-${i}`);
    const env = { now: () => 0, setTimer: () => ({ cancel() {} }), yieldNow: () => Promise.resolve() } as never;
    const pool = new ChunkBufferPool(8);
    const transfer = async (): Promise<Set<ArrayBufferLike>> => {
      const captured = { seq: 1, epoch: 1, version: 1, body: { format: 'records' as const, cursor: map.snapshot() } };
      const producer = new ChunkProducer(env, 'tid', captured, {
        chunkBytes: 8 * 1024,
        sliceBytes: 2000,
        sliceMs: 0,
        framedSlices: true,
        packedSlices: true,
        pool,
      });
      const buffers = new Set<ArrayBufferLike>();
      const inFlight: ChunkMsg[] = [];
      for (let c = await producer.next(); c; c = await producer.next()) {
        buffers.add(c.data.buffer);
        // A window of two: the chunk before last is acknowledged (released) when a new one is produced.
        inFlight.push(c);
        if (inFlight.length > 2) producer.release(inFlight.shift()!);
      }
      for (const c of inFlight) producer.release(c);
      producer.close();
      return buffers;
    };
    const first = await transfer();
    expect(first.size).toBe(3); // the window plus the one being filled
    expect(pool.free).toBe(3);
    const second = await transfer();
    expect([...second].every((b) => first.has(b))).toBe(true); // no fresh buffer
  });

  it('packed slices (SlabMap cursor) fill chunks in one reused buffer: no new buffer when a slice meets the chunk end', async () => {
    const map = new SlabMap({ slabBytes: 64 * 1024 });
    for (let i = 0; i < 20_000; i++) map.set(`key:${i}`, `value-${'x'.repeat(i % 90)}-${i}`);
    const env = { now: () => 0, setTimer: () => ({ cancel() {} }), yieldNow: () => Promise.resolve() } as never;
    const captured = { seq: 1, epoch: 1, version: 1, body: { format: 'records' as const, cursor: map.snapshot() } };
    const producer = new ChunkProducer(env, 'tid', captured, {
      chunkBytes: 16 * 1024,
      sliceBytes: 3000,
      sliceMs: 0,
      framedSlices: true,
      packedSlices: true,
    });
    const rebuilt = SlabMap.builder({ slabBytes: 64 * 1024 });
    const buffers = new Set<ArrayBufferLike>();
    let chunks = 0;
    for (let c = await producer.next(); c; c = await producer.next()) {
      expect(c.data.length).toBeLessThan(16 * 1024 + 3000 + 64);
      for (const s of decodeRecordSlices(c.data)) {
        if (!isPackedSlice(s)) throw new Error('not a packed slice');
        rebuilt.addPacked(s);
      }
      buffers.add(c.data.buffer);
      producer.release(c);
      chunks++;
    }
    expect(chunks).toBeGreaterThan(20);
    expect(buffers.size).toBe(1);
    const built = rebuilt.finish();
    expect(built.digest()).toBe(map.digest());
    // Built slabs grow with the map, the last one trimmed: about the live bytes, not hundreds of small slabs.
    expect(built.slabBytes).toBeLessThanOrEqual(2 * built.liveBytes + 64 * 1024);
  });
});
