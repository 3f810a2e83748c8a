// With three servers, replies that the master (or the focus) gives never wait for participants that do not
// answer: a participant holding every reply back does not delay the application.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FakeXServer, startConference, type TestConference } from './helpers/fake-x-server.js';
import { RawXClient } from './helpers/x-client.js';

let servers: FakeXServer[];
let rig: TestConference;
let client: RawXClient | null = null;

beforeEach(async () => {
  servers = [
    new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 }),
    new FakeXServer('p1', { base: 0x200000, root: 0x42, atomBase: 500, bigReqOpcode: 134 }),
    new FakeXServer('p2', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 }),
  ];
  rig = await startConference(servers);
});

afterEach(async () => {
  client?.close();
  await rig.close();
});

it('answers from the master are not held back by participants that never answer', async () => {
  const [master, p1, p2] = servers as [FakeXServer, FakeXServer, FakeXServer];
  client = await RawXClient.open(rig.port);
  const c = client;
  p1.holdReplies = true;
  p2.holdReplies = true;
  // InternAtom goes to all three (answered by the master); GetInputFocus (the focus, the master) and
  // ListFonts (the master) to the master only. Each is answered while p1 and p2 sit on their replies.
  const expected: number[] = [];
  for (let i = 0; i < 20; i++) {
    expected.push(c.internAtom(`ATOM_${i}`), c.request(43, 0), c.request(49, 0, Buffer.from([0, 0, 1, 0, 0x2a, 0, 0, 0])));
    await c.until(() => c.replies().length === expected.length);
  }
  expect(c.replies().map((r) => r.readUInt16LE(2))).toEqual(expected);
  expect(master.ofOpcode(16)).toHaveLength(20);
  // The participants did receive every InternAtom (they keep their atom tables) and held their replies.
  await c.until(() => p1.ofOpcode(16).length === 20 && p2.ofOpcode(16).length === 20);
  expect(p1.ofOpcode(43)).toHaveLength(0);
  expect(p2.ofOpcode(49)).toHaveLength(0);
});
