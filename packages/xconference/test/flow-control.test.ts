// A participant that reads slower than the application writes: the daemon stops reading the application
// instead of queueing without bound, and everything arrives, in order, once the participant catches up.
// Likewise an application that does not read: the daemon stops reading the servers.
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Conference } from '../src/conference.js';
import { DEFAULT_BACKLOG_BYTES } from '../src/session/socket-writer.js';
import { FakeXServer, startConference, type TestConference } from './helpers/fake-x-server.js';
import { RawXClient } from './helpers/x-client.js';

const OP_NO_OPERATION = 127;
const REQUEST_BYTES = 64 * 1024;

let servers: FakeXServer[];
let conference: Conference;
let rig: TestConference;
let client: RawXClient | null = null;

beforeEach(async () => {
  servers = [
    new FakeXServer('master', { base: 0x400000, root: 0x50d, atomBase: 300, bigReqOpcode: 133 }),
    new FakeXServer('slow', { base: 0x200000, root: 0x42, atomBase: 500, bigReqOpcode: 134 }),
  ];
  rig = await startConference(servers);
  conference = rig.conference;
});

afterEach(async () => {
  client?.close();
  await rig.close();
});

it("a slow participant pauses the application instead of growing the daemon's buffers; all arrives afterwards", async () => {
  const [master, slow] = servers as [FakeXServer, FakeXServer];
  client = await RawXClient.open(rig.port);
  const c = client;
  // BIG-REQUESTS is not needed: a 64 KiB request fits the core length field (16383 words = 65532 bytes).
  const body = Buffer.alloc(REQUEST_BYTES - 8);
  await c.until(() => conference.applications.length === 1 && conference.applications[0]!.participants.length === 2);
  const session = conference.applications[0]!;
  slow.pauseReading();
  // Write 4x the daemon's limit; the application's own socket buffers soak up what the daemon does not read.
  const count = Math.ceil((4 * DEFAULT_BACKLOG_BYTES) / REQUEST_BYTES);
  for (let i = 0; i < count; i++) c.request(OP_NO_OPERATION, 0, body);
  await c.until(() => session.stats.serverBacklogs > 0, 10_000);
  // Once paused, the daemon stops taking requests: the count the master has seen stops growing well short
  // of everything sent (without flow control the daemon would read it all and queue it for the slow one).
  await new Promise((r) => setTimeout(r, 300));
  const seen = master.ofOpcode(OP_NO_OPERATION).length;
  await new Promise((r) => setTimeout(r, 300));
  expect(master.ofOpcode(OP_NO_OPERATION).length).toBe(seen);
  expect(seen).toBeLessThan(count);
  slow.resumeReading();
  await c.until(() => slow.ofOpcode(OP_NO_OPERATION).length === count && master.ofOpcode(OP_NO_OPERATION).length === count, 20_000);
  // Nothing lost or reordered: the master's sequence numbers for them are consecutive.
  const seqs = master.ofOpcode(OP_NO_OPERATION).map((r) => r.seq);
  expect(seqs.every((s, i) => i === 0 || s === ((seqs[i - 1]! + 1) & 0xffff))).toBe(true);
  // The application is served again: a round trip completes.
  const seq = c.request(43, 0);
  await c.until(() => c.replies().some((r) => r.readUInt16LE(2) === seq));
}, 40_000);

it("an application that does not read pauses the servers instead of growing the daemon's buffers", async () => {
  const [master] = servers as [FakeXServer, FakeXServer];
  client = await RawXClient.open(rig.port);
  const c = client;
  await c.until(() => conference.applications.length === 1 && conference.applications[0]!.participants.length === 2);
  const session = conference.applications[0]!;
  c.sock.pause();
  // 2x the limit of Expose events (Redraw category: forwarded from any server) from the master.
  const EXPOSE = 12;
  const total = Math.ceil((2 * DEFAULT_BACKLOG_BYTES) / 32);
  const burst = Buffer.alloc(total * 32);
  for (let i = 0; i < total; i++) {
    burst[i * 32] = EXPOSE;
    burst.writeUInt32LE(0x400001, i * 32 + 4); // a window id (translation of master events is the identity)
  }
  master.writeRaw(burst);
  await c.until(() => session.stats.appBacklogs > 0, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  const forwarded = session.stats.forwardedEvents;
  await new Promise((r) => setTimeout(r, 300));
  expect(session.stats.forwardedEvents).toBe(forwarded);
  expect(forwarded).toBeLessThan(total);
  c.sock.resume();
  await c.until(() => c.messages.length >= total, 30_000);
  expect(c.events(EXPOSE)).toHaveLength(total);
  expect(session.stats.forwardedEvents).toBe(total);
}, 40_000);
