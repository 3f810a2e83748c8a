import { createServer, connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Conference } from '../src/conference.js';
import { FakeXServer, listenForApplications, startConference, upstreamOf, type TestConference } from './helpers/fake-x-server.js';
import { RawXClient } from './helpers/x-client.js';
import { parseFocusTrigger } from '../src/session/focus-trigger.js';

// The master (base 0x400000, root 0x50d), a participant p1 from the start, and p3 that joins late with its
// own base (0x600000), root (0x77) and atom numbers (from 700).
let master: FakeXServer;
let p1: FakeXServer;
let p3: FakeXServer;
let conference: Conference;
let rig: TestConference;
let port: number;
let closedReason: string | null;
let clients: RawXClient[];
let logs: string[];

const up = upstreamOf;

beforeEach(async () => {
  master = new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 });
  p1 = new FakeXServer('p1', { base: 0x200000, root: 0x42, atomBase: 500, bigReqOpcode: 134 });
  p3 = new FakeXServer('p3', { base: 0x600000, root: 0x77, atomBase: 700, bigReqOpcode: 135 });
  await p3.start(); // joins later
  closedReason = null;
  clients = [];
  logs = [];
  rig = await startConference([master, p1], {
    trigger: parseFocusTrigger('ctrl+alt+f'),
    onClose: (r) => (closedReason = r),
    log: (l) => logs.push(l),
  });
  conference = rig.conference;
  port = rig.port;
});

afterEach(async () => {
  for (const c of clients) c.close();
  await rig.close();
  await p3.stop();
});

async function app(): Promise<RawXClient> {
  const c = await RawXClient.open(port);
  clients.push(c);
  return c;
}

async function sync(c: RawXClient): Promise<void> {
  const seq = c.request(43, 0);
  await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === (seq & 0xffff)));
}

const W1 = 0x400001;
const PIX = 0x400002;
const W2 = 0x400003;

/** CreateWindow (InputOutput, 40x30 at 5,6) with an event mask. */
function createWindow(c: RawXClient, id: number, parent: number): void {
  c.words(1, 0, [id, parent, (6 << 16) | 5, (30 << 16) | 40, 1 << 16, 0, 0x800, 0x8000]);
}

/** An application with an interned atom, a window with a property, a 4x3 pixmap, the window mapped. */
async function runningApp(): Promise<RawXClient> {
  const c = await app();
  c.internAtom('TANDEM_LABEL');
  await c.until(() => c.replies().length === 1);
  const atom = c.replies()[0]!.readUInt32LE(8);
  expect(atom).toBe(300);
  createWindow(c, W1, 0x50d);
  c.words(53, 24, [PIX, W1, (3 << 16) | 4]);
  const text = Buffer.from('hi');
  const body = Buffer.alloc(20 + 4);
  body.writeUInt32LE(W1, 0);
  body.writeUInt32LE(atom, 4);
  body.writeUInt32LE(31, 8); // STRING
  body[12] = 8;
  body.writeUInt32LE(2, 16);
  text.copy(body, 20);
  c.request(18, 0, body);
  c.words(8, 0, [W1]);
  await sync(c);
  return c;
}

/** What p3 received after setup, as opcode names, skipping the proxy's keyboard-mapping request. */
const NAMES: Record<number, string> = {
  1: 'CreateWindow',
  2: 'ChangeWindowAttributes',
  8: 'MapWindow',
  16: 'InternAtom',
  18: 'ChangeProperty',
  43: 'GetInputFocus',
  53: 'CreatePixmap',
  55: 'CreateGC',
  60: 'FreeGC',
  72: 'PutImage',
};
const received = (s: FakeXServer): string[] => s.received.filter((r) => r.opcode !== 101).map((r) => NAMES[r.opcode] ?? String(r.opcode));

describe('a participant joining a running application', () => {
  it('gets the application’s live resources recreated in its own numbering, pixmap contents from the master, then later requests', async () => {
    const c = await runningApp();
    await conference.addParticipant(up(p3));
    await c.until(() => p3.ofOpcode(8).length === 1); // the replay is on its way when the join resolves
    expect(conference.participantNames).toEqual(['master', 'p1', 'p3']);
    expect(conference.applications[0]!.participants).toEqual(['master', 'p1', 'p3']);
    expect(received(p3)).toEqual([
      'InternAtom',
      'GetInputFocus',
      'CreatePixmap',
      'CreateGC',
      'PutImage',
      'FreeGC',
      'CreateWindow',
      'ChangeProperty',
      'MapWindow',
    ]);
    const [, , pix, gc, put, , win, prop, map] = p3.received.filter((r) => r.opcode !== 101).map((r) => r.bytes);
    expect(pix!.readUInt32LE(4)).toBe(0x600002); // translated to p3's base
    expect(pix!.readUInt32LE(8)).toBe(0x77); // its root
    expect(gc!.readUInt32LE(8)).toBe(0x600002);
    // the master was asked for the pixmap's contents; the fake answers pixel i = i
    expect(master.ofOpcode(73).length).toBe(1);
    expect(put!.readUInt32LE(4)).toBe(0x600002);
    expect([put!.readUInt16LE(12), put!.readUInt16LE(14), put![21]]).toEqual([4, 3, 24]);
    expect([...Array(12).keys()].map((i) => put!.readUInt32LE(24 + 4 * i))).toEqual([...Array(12).keys()]);
    expect([win!.readUInt32LE(4), win!.readUInt32LE(8), win!.readUInt32LE(28), win!.readUInt32LE(32)]).toEqual([
      0x600001, 0x77, 0x800, 0x8000,
    ]);
    // position as the application asked; size and border as the master reports them (GetGeometry)
    expect([win!.readInt16LE(12), win!.readInt16LE(14), win!.readUInt16LE(16), win!.readUInt16LE(18), win!.readUInt16LE(20)]).toEqual([
      5, 6, 77, 55, 3,
    ]);
    expect(master.ofOpcode(14).length).toBe(1);
    expect(prop!.readUInt32LE(4)).toBe(0x600001);
    expect(prop!.readUInt32LE(8)).toBe(700); // p3's own atom for TANDEM_LABEL
    expect(prop!.toString('latin1', 24, 26)).toBe('hi');
    expect(map!.readUInt32LE(4)).toBe(0x600001);
    // later requests follow, translated
    c.words(10, 0, [W1]);
    await sync(c);
    await c.until(() => p3.ofOpcode(10).length === 1);
    expect(p3.ofOpcode(10)[0]!.bytes.readUInt32LE(4)).toBe(0x600001);
    // p3's replies and errors never reach the application; only the master's
    expect(c.errors()).toEqual([]);
    expect(conference.applications[0]!.lastJoin).toMatchObject({ images: 1, atoms: 1, replayedRequests: 7 });
  });

  it('queues the requests sent during the join and delivers them after the replay, in order', async () => {
    const c = await runningApp();
    master.holdReplies = true; // the master's GetImage answer is late: the join waits for it
    const joined = conference.addParticipant(up(p3));
    await c.until(() => master.ofOpcode(73).length === 1);
    createWindow(c, W2, W1);
    c.words(2, 0, [W1, 0x2, 0xabcdef]); // ChangeWindowAttributes background pixel
    const internSeq = c.internAtom('LATE_ATOM');
    await c.until(() => master.ofOpcode(2).length === 1 && master.ofOpcode(16).length === 2);
    expect(p3.ofOpcode(1)).toEqual([]); // nothing of the replay nor the queue yet
    master.release();
    await joined;
    await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === internSeq));
    await c.until(() => p3.ofOpcode(16).length === 2);
    expect(received(p3)).toEqual([
      'InternAtom', // TANDEM_LABEL
      'GetInputFocus',
      'CreatePixmap',
      'CreateGC',
      'PutImage',
      'FreeGC',
      'CreateWindow', // W1 as of the join point
      'ChangeProperty',
      'MapWindow',
      'CreateWindow', // W2, queued
      'ChangeWindowAttributes', // queued
      'InternAtom', // LATE_ATOM, queued; its answer fills p3's atom table
    ]);
    const w2 = p3.ofOpcode(1)[1]!.bytes;
    expect([w2.readUInt32LE(4), w2.readUInt32LE(8)]).toEqual([0x600003, 0x600001]);
    // LATE_ATOM is 701 on p3: a property with it is translated
    const body = Buffer.alloc(24);
    body.writeUInt32LE(W1, 0);
    body.writeUInt32LE(301, 4); // the master's LATE_ATOM
    body.writeUInt32LE(31, 8);
    body[12] = 8;
    c.request(18, 0, body);
    await sync(c);
    await c.until(() => p3.ofOpcode(18).length === 2);
    expect(p3.ofOpcode(18)[1]!.bytes.readUInt32LE(8)).toBe(701);
  });

  it('joins every open application, and applications that connect later include the new participant', async () => {
    const a = await runningApp();
    const b = await app();
    createWindow(b, 0x400001, 0x50d); // the fake gives every connection the same base
    await sync(b);
    await conference.addParticipant(up(p3));
    await b.until(() => p3.ofOpcode(1).length === 2);
    const later = await app();
    await sync(later);
    expect(conference.applications.map((s) => s.participants)).toEqual([
      ['master', 'p1', 'p3'],
      ['master', 'p1', 'p3'],
      ['master', 'p1', 'p3'],
    ]);
    void a;
  });

  it('rejects a name that is already a participant, and an unreachable server, disturbing nothing', async () => {
    const c = await runningApp();
    await expect(conference.addParticipant(up(p1))).rejects.toThrow(/already a participant/);
    const dead = createServer();
    await new Promise<void>((res) => dead.listen(0, '127.0.0.1', () => res()));
    const deadPort = (dead.address() as { port: number }).port;
    await dead.close();
    await expect(conference.addParticipant({ name: 'nobody', connect: () => connect(deadPort, '127.0.0.1') })).rejects.toThrow(/nobody/);
    expect(conference.participantNames).toEqual(['master', 'p1']);
    expect(conference.applications[0]!.participants).toEqual(['master', 'p1']);
    await sync(c);
    c.words(10, 0, [W1]);
    await sync(c);
    await c.until(() => p1.ofOpcode(10).length === 1);
    expect(closedReason).toBeNull();
  });

  it('replays only resources that exist on the master: a font the master refused is not opened on the newcomer', async () => {
    // A master without the font: it answers every OpenFont (45) with an error; p1 has it.
    const fontless = new FakeXServer('fontless', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133, errorOpcodes: [45] });
    const rig2 = await startConference([fontless], { log: (l) => logs.push(l) });
    try {
      const c = await RawXClient.open(rig2.port);
      clients.push(c);
      const name = Buffer.from('no-such-font');
      const body = Buffer.alloc(8 + name.length + ((4 - (name.length % 4)) % 4));
      body.writeUInt32LE(0x400009, 0);
      body.writeUInt16LE(name.length, 4);
      name.copy(body, 8);
      c.request(45, 0, body);
      createWindow(c, W1, 0x50d);
      await sync(c);
      await c.until(() => c.errors().length === 1);
      await rig2.conference.addParticipant(up(p3));
      await c.until(() => p3.ofOpcode(1).length === 1);
      expect(p3.ofOpcode(45)).toHaveLength(0);
      expect(logs.filter((l) => l.includes("for the proxy's own request"))).toEqual([]);
    } finally {
      await rig2.close();
    }
  });

  it('enables BIG-REQUESTS on the newcomer (its own opcode) when the application uses it, so big requests reach it', async () => {
    const c = await runningApp();
    c.queryExtension('BIG-REQUESTS');
    await c.until(() => c.replies().length === 3); // after runningApp's InternAtom and sync
    expect(c.replies()[2]![9]).toBe(133);
    c.request(133, 0);
    await c.until(() => c.replies().length === 4);
    await conference.addParticipant(up(p3));
    await c.until(() => p3.ofOpcode(135).length === 1);
    expect(p3.ofOpcode(98).length).toBe(1);
    // a ChangeProperty in BIG-REQUESTS form (length field 0, 32-bit length after it)
    const req = Buffer.alloc(32);
    req[0] = 18;
    req.writeUInt16LE(0, 2);
    req.writeUInt32LE(8, 4);
    req.writeUInt32LE(W1, 8);
    req.writeUInt32LE(39, 12); // WM_NAME
    req.writeUInt32LE(31, 16);
    req[20] = 8;
    req.writeUInt32LE(4, 24);
    req.write('big!', 28, 'latin1');
    c.sock.write(req);
    c.seq++;
    await sync(c);
    await c.until(() => p3.ofOpcode(18).length === 2);
    const got = p3.ofOpcode(18)[1]!.bytes;
    expect([got.readUInt32LE(8), got.toString('latin1', 28, 32)]).toEqual([0x600001, 'big!']);
  });

  it('fails a join whose servers do not answer in time; the application goes on', async () => {
    const quick = new Conference({ participants: [up(master)], trigger: parseFocusTrigger('none'), joinTimeoutMs: 300 });
    const own = await listenForApplications(quick);
    try {
      const c = await RawXClient.open(own.port);
      clients.push(c);
      await sync(c);
      master.holdReplies = true; // the master does not answer GetImage/GetInputFocus
      await expect(quick.addParticipant(up(p3))).rejects.toThrow(/timed out/);
      expect(quick.participantNames).toEqual(['master']);
      master.release();
      await sync(c);
      expect(quick.applications[0]!.participants).toEqual(['master']);
    } finally {
      quick.close('test over');
      await own.close();
    }
  });

  it('rejects joining a closed conference', async () => {
    conference.close('done');
    await expect(conference.addParticipant(up(p3))).rejects.toThrow(/closed/);
  });

  it('fails the join and leaves the application undisturbed when the new server drops during the join', async () => {
    const c = await runningApp();
    master.holdReplies = true;
    const joined = conference.addParticipant(up(p3));
    await c.until(() => master.ofOpcode(73).length === 1);
    await c.until(() => p3.received.length > 0);
    p3.dropConnections();
    await expect(joined).rejects.toThrow(/p3/);
    master.release();
    expect(conference.participantNames).toEqual(['master', 'p1']);
    await sync(c);
    expect(closedReason).toBeNull();
  });

  it('a join that fails midway rejects with JoinError "failed", the application\'s failure as its cause', async () => {
    const c = await runningApp();
    master.holdReplies = true;
    const joined = conference.addParticipant(up(p3));
    await c.until(() => master.ofOpcode(73).length === 1);
    await c.until(() => p3.received.length > 0);
    p3.dropConnections();
    const err = await joined.then(
      () => null,
      (e: unknown) => e,
    );
    master.release();
    expect(err).toMatchObject({ name: 'JoinError', code: 'failed', message: expect.stringMatching(/^p3 could not join: p3: /) });
    expect((err as Error).cause).toMatchObject({ name: 'JoinError', code: 'failed' });
    await sync(c);
  });
});

describe('participants leaving', () => {
  it('a non-master leaves: its connection closes, the focus falls back to the master, the others go on', async () => {
    const c = await runningApp();
    await conference.addParticipant(up(p3));
    expect(conference.setFocus('p3')).toBe(1);
    expect(conference.applications[0]!.focusName).toBe('p3');
    expect(conference.removeParticipant('p3')).toBe(true);
    expect(conference.removeParticipant('p3')).toBe(false);
    expect(conference.participantNames).toEqual(['master', 'p1']);
    expect(conference.applications[0]!.focusName).toBe('master');
    const before = p3.received.length;
    c.words(10, 0, [W1]);
    await sync(c);
    await c.until(() => p1.ofOpcode(10).length === 1);
    expect(p3.received.length).toBe(before);
    expect(closedReason).toBeNull();
    // and may come back: a second late join
    await conference.addParticipant(up(p3));
    expect(conference.applications[0]!.participants).toEqual(['master', 'p1', 'p3']);
  });

  it('a participant removed while an application is still connecting is left out of it once it starts', async () => {
    const own = createServer((sock) => {
      conference.addApplication(sock);
      conference.removeParticipant('p1'); // before the session has even read the client's setup
    });
    await new Promise<void>((res) => own.listen(0, '127.0.0.1', () => res()));
    try {
      const c = await RawXClient.open((own.address() as { port: number }).port);
      clients.push(c);
      await sync(c);
      await c.until(() => conference.applications[0]!.participants.length === 1);
      expect(conference.applications[0]!.participants).toEqual(['master']);
      expect(conference.participantNames).toEqual(['master']);
      c.words(10, 0, [W1]);
      await sync(c);
      expect(p1.ofOpcode(10)).toEqual([]);
    } finally {
      own.close(); // completes once afterEach has closed the client
    }
  });

  it('the master leaving closes the conference and its applications', async () => {
    const c = await runningApp();
    expect(conference.removeParticipant('master')).toBe(true);
    expect(closedReason).toMatch(/master/);
    await c.until(() => c.closed);
    expect(conference.isClosed).toBe(true);
  });
});

describe('several applications, each with its own input focus', () => {
  it('setFocus with an application id moves only that application’s focus', async () => {
    const a = await app();
    const b = await app();
    await Promise.all([sync(a), sync(b)]);
    const [sa, sb] = conference.applications;
    expect(conference.setFocus('p1', sb!.id)).toBe(1);
    expect([sa!.focusName, sb!.focusName]).toEqual(['master', 'p1']);
    expect(conference.setFocus('p1', sb!.id)).toBe(0); // already there
    expect(conference.setFocus('nobody')).toBe(0);
    // queries go to each application's own focus
    const before = p1.ofOpcode(38).length;
    b.request(38, 0, Buffer.from([0x0d, 0x05, 0, 0]));
    a.request(38, 0, Buffer.from([0x0d, 0x05, 0, 0]));
    await Promise.all([sync(a), sync(b)]);
    expect(p1.ofOpcode(38).length).toBe(before + 1);
  });
});
