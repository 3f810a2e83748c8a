import { createServer, connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Conference } from '../src/conference.js';
import { FakeXServer, listenForApplications, startConference, upstreamOf, type TestConference } from './helpers/fake-x-server.js';
import { RawXClient } from './helpers/x-client.js';
import { parseFocusTrigger } from '../src/session/focus-trigger.js';

// Three fake servers: the master (base 0x400000, root 0x50d), a participant with a different base and root,
// and one that agrees with the master (ids pass through).
let master: FakeXServer;
let p1: FakeXServer;
let p2: FakeXServer;
let conference: Conference;
let rig: TestConference;
let port: number;
let closedReason: string | null;
let clients: RawXClient[];

beforeEach(async () => {
  master = new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133, errorOpcodes: [10] });
  p1 = new FakeXServer('p1', { base: 0x200000, root: 0x42, atomBase: 500, bigReqOpcode: 134, errorOpcodes: [10] });
  p2 = new FakeXServer('p2', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133, errorOpcodes: [10] });
  closedReason = null;
  clients = [];
  rig = await startConference([master, p1, p2], { trigger: parseFocusTrigger('ctrl+alt+f'), onClose: (r) => (closedReason = r) });
  conference = rig.conference;
  port = rig.port;
});

afterEach(async () => {
  for (const c of clients) c.close();
  await rig.close();
});

async function app(le = true): Promise<RawXClient> {
  const c = await RawXClient.open(port, le);
  clients.push(c);
  return c;
}

/** A round trip through the master (GetInputFocus is an input request; the master is the initial focus). */
async function sync(c: RawXClient): Promise<void> {
  const seq = c.request(43, 0);
  await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === (seq & 0xffff)));
}

const keyPress = (keycode: number, state: number, window: number) => (ev: Buffer, le: boolean) => {
  ev[0] = 2;
  ev[1] = keycode;
  if (le) {
    ev.writeUInt32LE(window, 12);
    ev.writeUInt16LE(state, 28);
  } else {
    ev.writeUInt32BE(window, 12);
    ev.writeUInt16BE(state, 28);
  }
};

describe('ApplicationSession with three servers', () => {
  it('gives the application the master’s setup reply', async () => {
    const c = await app();
    expect(c.setup).toMatchObject({ status: 'success', resourceIdBase: 0x400000 });
    expect(c.setup!.screens[0]!.root).toBe(0x50d);
  });

  it('sends InternAtom to all servers, answers from the master, and translates the atom for the others', async () => {
    const c = await app();
    const seq = c.internAtom('WM_PROTOCOLS');
    await c.until(() => c.replies().length === 1);
    const reply = c.replies()[0]!;
    expect(reply.readUInt16LE(2)).toBe(seq);
    expect(reply.readUInt32LE(8)).toBe(300); // the master's atom
    expect([master, p1, p2].map((s) => s.ofOpcode(16).length)).toEqual([1, 1, 1]);
    // ChangeProperty(window 0x400003, property = that atom, type ATOM) reaches p1 in its own numbering
    c.words(18, 0, [0x400003, 300, 4, 32 << 0, 1, 300]);
    await sync(c);
    await c.until(() => p1.ofOpcode(18).length === 1);
    const onP1 = p1.ofOpcode(18)[0]!.bytes;
    expect(onP1.readUInt32LE(4)).toBe(0x200003);
    expect(onP1.readUInt32LE(8)).toBe(500);
    expect(onP1.readUInt32LE(24)).toBe(500); // the ATOM-typed property data too
    const onMaster = master.ofOpcode(18)[0]!.bytes;
    expect(onMaster.readUInt32LE(4)).toBe(0x400003);
    expect(onMaster.readUInt32LE(8)).toBe(300);
  });

  it('sends display and input queries to the focus, server queries to the master, with exact sequence numbers', async () => {
    const c = await app();
    c.words(8, 0, [0x400003]); // MapWindow → all
    const geo = c.words(14, 0, [0x400003]); // GetGeometry → focus
    const fonts = c.request(49, 0, Buffer.from([0, 0, 1, 0, 0x2a, 0, 0, 0])); // ListFonts → master
    const ptr = c.words(38, 0, [0x400003]); // QueryPointer → focus
    await c.until(() => c.replies().length === 3);
    expect(c.replies().map((r) => r.readUInt16LE(2))).toEqual([geo, fonts, ptr]);
    expect([master, p1, p2].map((s) => s.ofOpcode(8).length)).toEqual([1, 1, 1]);
    expect([master, p1, p2].map((s) => s.ofOpcode(14).length)).toEqual([1, 0, 0]);
    expect([master, p1, p2].map((s) => s.ofOpcode(49).length)).toEqual([1, 0, 0]);
  });

  it('passes errors to the application only from the master', async () => {
    const c = await app();
    const seq = c.words(10, 0, [0x400003]); // UnmapWindow: every fake server answers BadWindow
    await sync(c);
    await c.until(
      () => [master, p1, p2].every((s) => s.ofOpcode(10).length === 1) && conference.applications[0]!.stats.droppedErrors === 2,
    );
    expect(c.errors()).toHaveLength(1);
    expect(c.errors()[0]!.readUInt16LE(2)).toBe(seq);
    const session = conference.applications[0]!;
    expect(session.stats.droppedErrors).toBe(2);
  });

  it('filters events by category and role, translating ids from non-master servers', async () => {
    const c = await app();
    await sync(c);
    p1.emit(keyPress(38, 0, 0x200003)); // user input from a non-focus participant: dropped
    p1.emit((ev) => {
      ev[0] = 12; // Expose from a participant: passed, window translated
      ev.writeUInt32LE(0x200003, 4);
    });
    p1.emit((ev) => (ev[0] = 34)); // MappingNotify from a participant: dropped
    p1.emit((ev) => (ev[0] = 33)); // ClientMessage from a participant: dropped
    p1.emit((ev) => {
      ev[0] = 19; // MapNotify from a non-focus participant: dropped
    });
    master.emit(keyPress(38, 0, 0x400003)); // user input from the focus: passed
    master.emit((ev) => (ev[0] = 34)); // MappingNotify from the master: passed
    await c.until(() => c.events().length >= 3);
    await sync(c);
    // servers are independent, so only the set (not the order across servers) is fixed
    expect(
      c
        .events()
        .map((e) => e[0])
        .sort((x, y) => x! - y!),
    ).toEqual([2, 12, 34]);
    expect(c.events(12)[0]!.readUInt32LE(4)).toBe(0x400003);
  });

  it('moves the input focus on the configured key chord from a participant, then routes queries there', async () => {
    const c = await app();
    await sync(c); // the proxy has learnt each server's keycode for "f"
    p1.emit(keyPress(41, 4 | 8, 0x200003)); // ctrl+alt+f on p1
    await c.until(() => conference.applications[0]!.focusName === 'p1');
    p1.emit(keyPress(38, 0, 0x200003)); // now p1's input reaches the application
    master.emit(keyPress(39, 0, 0x400003)); // and the master's no longer does
    const seq = c.words(14, 0, [0x400003]);
    await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === seq));
    const geo = c.replies().find((r) => r.readUInt16LE(2) === seq)!;
    expect(geo.readUInt32LE(8)).toBe(0x50d); // p1's root 0x42 in the application's numbering
    expect(p1.ofOpcode(14)[0]!.bytes.readUInt32LE(4)).toBe(0x200003);
    expect(c.events(2).map((e) => e[1])).toEqual([38]);
  });

  it('answers "not present" for unsupported extensions and enables BIG-REQUESTS on every server', async () => {
    const c = await app();
    const randr = c.queryExtension('RANDR');
    const big = c.queryExtension('BIG-REQUESTS');
    await c.until(() => c.replies().length === 2);
    const byseq = (s: number) => c.replies().find((r) => r.readUInt16LE(2) === s)!;
    expect(byseq(randr)[8]).toBe(0);
    expect(byseq(big)[8]).toBe(1);
    expect(byseq(big)[9]).toBe(133);
    c.request(133, 0);
    await c.until(() => c.replies().length === 3);
    expect(master.ofOpcode(133)).toHaveLength(1);
    expect(p1.ofOpcode(134)).toHaveLength(1); // p1's own opcode for BIG-REQUESTS
    expect(p2.ofOpcode(133)).toHaveLength(1);
    // A request with the 32-bit length form now passes through to every server.
    const bigReq = Buffer.alloc(16);
    bigReq[0] = 70;
    bigReq.writeUInt16LE(0, 2);
    bigReq.writeUInt32LE(4, 4);
    bigReq.writeUInt32LE(0x400001, 8);
    bigReq.writeUInt32LE(0x400002, 12);
    c.sock.write(bigReq);
    c.seq++;
    await sync(c);
    await c.until(() => p1.ofOpcode(70).length === 1);
    expect(p1.ofOpcode(70)[0]!.bytes.readUInt32LE(8)).toBe(0x200001);
    expect(master.ofOpcode(70)[0]!.bytes.length).toBe(16);
  });

  it('keeps sequence numbers exact although servers see different subsets', async () => {
    const c = await app();
    for (let i = 0; i < 5; i++) c.words(14, 0, [0x400003]); // focus only
    c.words(8, 0, [0x400003]); // all
    const last = c.internAtom('X'); // all, reply from the master
    await c.until(() => c.replies().length === 6);
    expect(c.replies().map((r) => r.readUInt16LE(2))).toEqual([1, 2, 3, 4, 5, last]);
    expect(p1.received.filter((r) => r.opcode !== 101).map((r) => r.opcode)).toEqual([8, 16]);
  });

  it('closes only the offending application on malformed input; the others go on', async () => {
    const good = await app();
    const bad = await app(false);
    bad.sock.write(Buffer.from([72, 0, 0, 0])); // length 0 without BIG-REQUESTS
    await bad.until(() => bad.closed);
    await sync(good);
    expect(good.closed).toBe(false);
    // A CreateWindow too short for its own fields.
    const closedErrors: string[] = [];
    const short = await app();
    const session = conference.applications.at(-1)!;
    short.sock.write(Buffer.from([1, 0, 2, 0, 0, 0, 0x40, 0]));
    await short.until(() => short.closed);
    closedErrors.push(session.lastError?.code ?? 'none');
    expect(closedErrors).toEqual(['malformed-request']);
    const raw = connect(port, '127.0.0.1');
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await new Promise<void>((res) => raw.once('close', () => res()));
    await sync(good);
    expect(conference.isClosed).toBe(false);
  });

  it('drops a participant that sends garbage without disturbing the application', async () => {
    const c = await app();
    await sync(c);
    const ev = Buffer.alloc(32);
    ev[0] = 1;
    ev.writeUInt32LE(0xffffffff, 4); // absurd reply length
    p1.writeRaw(ev);
    await c.until(() => conference.applications[0]!.participants.length === 2);
    await sync(c);
    expect(c.closed).toBe(false);
  });

  it('closes the application and the conference when the master leaves', async () => {
    const c = await app();
    await sync(c);
    await master.stop();
    await c.until(() => c.closed);
    expect(closedReason).toMatch(/master/);
    expect(conference.isClosed).toBe(true);
  });

  it('works for big-endian clients too', async () => {
    const c = await app(false);
    const seq = c.internAtom('FOO');
    await c.until(() => c.replies().length === 1);
    expect(c.replies()[0]!.readUInt16BE(2)).toBe(seq);
    expect(c.replies()[0]!.readUInt32BE(8)).toBe(300);
  });

  it('keeps replies in sequence order when the focus (not the master) answers slowly', async () => {
    const c = await app();
    await sync(c);
    conference.setFocus('p1');
    p1.holdReplies = true;
    const geo = c.words(14, 0, [0x400003]); // answered by p1, the focus — held back
    const fonts = c.request(49, 0, Buffer.from([0, 0, 1, 0, 0x2a, 0, 0, 0])); // answered by the master at once
    await c.until(() => master.ofOpcode(49).length === 1 && p1.ofOpcode(14).length === 1);
    await new Promise((r) => setTimeout(r, 30));
    expect(c.replies()).toHaveLength(1); // only the sync reply so far: ListFonts waits for GetGeometry
    p1.release();
    await c.until(() => c.replies().length === 3);
    expect(
      c
        .replies()
        .slice(1)
        .map((r) => r.readUInt16LE(2)),
    ).toEqual([geo, fonts]);
  });

  it('sends unanswered queries again to the master when the focus participant leaves', async () => {
    const c = await app();
    await sync(c);
    conference.setFocus('p1');
    p1.holdReplies = true;
    const geo = c.words(14, 0, [0x400003]);
    await c.until(() => p1.ofOpcode(14).length === 1);
    p1.dropConnections();
    await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === geo));
    expect(master.ofOpcode(14)).toHaveLength(1);
    expect(conference.applications[0]!.focusName).toBe('master');
    // A server that went away on its own is no longer a participant of the conference.
    expect(conference.participantNames).toEqual(['master', 'p2']);
  });

  it('with a button trigger, a click on a participant moves the focus and the click reaches the application', async () => {
    const conf2 = new Conference({
      participants: [master, p1, p2].map(upstreamOf),
      trigger: parseFocusTrigger('button1'),
    });
    const l2 = await listenForApplications(conf2);
    try {
      const c = await RawXClient.open(l2.port);
      clients.push(c);
      await sync(c);
      p2.emit((ev) => {
        ev[0] = 4; // ButtonPress, button 3: not the trigger
        ev[1] = 3;
      });
      p2.emit((ev) => {
        ev[0] = 4; // ButtonPress, button 1: the trigger
        ev[1] = 1;
      });
      await c.until(() => conf2.applications[0]!.focusName === 'p2');
      await c.until(() => c.events(4).length === 1);
      expect(c.events(4)[0]![1]).toBe(1);
    } finally {
      conf2.close('test over');
      await l2.close();
    }
  });

  it('forwards KeymapNotify (no sequence number) from the focus with its bytes untouched', async () => {
    const c = await app();
    await sync(c);
    master.emit((ev) => {
      ev[0] = 11;
      for (let i = 1; i < 32; i++) ev[i] = i;
    });
    await c.until(() => c.events(11).length === 1);
    const ev = c.events(11)[0]!;
    expect([...ev.subarray(1, 8)]).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('leaves out a participant that never answers the connection setup', async () => {
    const silent = createServer(() => {}); // accepts, never replies
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', () => res()));
    const conf3 = new Conference({
      participants: [
        upstreamOf(master),
        { name: 'silent', connect: () => connect((silent.address() as { port: number }).port, '127.0.0.1') },
      ],
      trigger: parseFocusTrigger('none'),
      setupTimeoutMs: 200,
    });
    const l3 = await listenForApplications(conf3);
    try {
      const c = await RawXClient.open(l3.port);
      clients.push(c);
      await sync(c);
      expect(conf3.applications[0]!.participants).toEqual(['master']);
    } finally {
      conf3.close('test over');
      await l3.close();
      silent.close();
    }
  });

  it("a participant stalled at a new application's setup is left out of that one only; running ones keep it", async () => {
    // p1 answers the first application's setup; then it stalls (a SIGSTOPped server: the kernel accepts,
    // nothing answers) while a second application connects (docs/XCONFERENCE.md, "Bad input").
    const stalled = createServer(() => {});
    await new Promise<void>((res) => stalled.listen(0, '127.0.0.1', () => res()));
    let stall = false;
    const p1Upstream = {
      name: 'p1',
      connect: () => (stall ? connect((stalled.address() as { port: number }).port, '127.0.0.1') : connect(p1.port, '127.0.0.1')),
    };
    const conf4 = new Conference({
      participants: [upstreamOf(master), p1Upstream],
      trigger: parseFocusTrigger('none'),
      setupTimeoutMs: 200,
    });
    const l4 = await listenForApplications(conf4);
    try {
      const first = await RawXClient.open(l4.port);
      clients.push(first);
      await sync(first);
      expect(conf4.applications[0]!.participants).toEqual(['master', 'p1']);
      stall = true;
      const second = await RawXClient.open(l4.port);
      clients.push(second);
      await sync(second);
      expect(conf4.applications.map((a) => a.participants)).toEqual([['master', 'p1'], ['master']]);
      expect(conf4.participantNames).toEqual(['master', 'p1']);
      // …and the first application still reaches p1: InternAtom goes to every participant.
      const before = p1.ofOpcode(16).length;
      first.internAtom('STILL_HERE');
      await first.until(() => p1.ofOpcode(16).length === before + 1);
    } finally {
      conf4.close('test over');
      await l4.close();
      stalled.close();
    }
  });
});
