// The simulated network (`sim://`, packages/testkit/src/sim/network.ts) is a Transport like the others: it
// runs the shared compliance suite.
//
// The simulation runs on virtual time and nothing moves unless its scheduler runs. Here a pump runs the
// scheduler in step with the real clock (one virtual ms per real ms), so that the suite's real-time bounds
// (a 300 ms dial timeout, "within 10 s", a sleep before an abort) mean the same in both worlds. Each
// createTransport() is a process of its own (a SimNode on a host of its own); a killed peer is a process
// crash (its kernel resets the connections), a silent peer is a listener whose machine died (dials go
// unanswered).
//
// Cases that cannot apply to a network of whole messages are skipped here, each with the reason printed
// when it is skipped; so are the cases that fail on a known gap of the simulated network (reported, see
// `knownGaps`). A stale entry (a test title the suite no longer has) fails the file.
import { afterAll, beforeEach, expect } from 'vitest';
import { Simulation } from '@tandem/testkit';
import { type ComplianceHarness, COMPLIANCE_TEST_COUNT, describeTransportCompliance } from '@tandem/transport/compliance';

const sim = new Simulation({ seed: 20_261_201 });
const t0 = performance.now();
let pumping = true;
const pump = (async () => {
  while (pumping) {
    await sim.scheduler.run({ until: performance.now() - t0 });
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
})();

let n = 0;
const enc = new TextEncoder();
const noRawStream = (): never => {
  throw new Error('the simulated network carries whole messages: there is no raw byte stream to open');
};

/** The harness, plus the cases this transport does not run and why. */
const harness: ComplianceHarness & { notApplicable: Record<string, string>; knownGaps: Record<string, string> } = {
  name: 'sim (testkit simulated network, virtual time paced by the real clock)',
  createTransport: () => sim.node(`proc-${++n}`).env().network,
  listenAddress: () => `sim://listener-${++n}`,
  refusedAddress: () => `sim://nobody-${++n}`,
  silentPeer: async () => {
    const node = sim.node(`silent-${++n}`);
    const listener = await node.env().network.listen(`sim://silent-${n}`);
    sim.crashHost(node.host); // a dead machine answers nothing: dials to it time out
    return { address: listener.address, close: async () => {} };
  },
  openRaw: async () => noRawStream(),
  startPeer: async (address) => {
    const node = sim.node(`peer-${++n}`);
    const conn = await node.env().network.dial(address);
    await conn.send(enc.encode(`peer ${node.name} ready`));
    return {
      kill: () => node.crash(), // a process crash: the host's kernel resets its connections
      dispose: () => conn.abort(),
    };
  },
  notApplicable: {
    'survives garbage from a raw peer: the raw stream is dropped, with a ProtocolError on any accepted connection':
      'no byte stream: the simulated network delivers whole messages between Connection objects, so no raw bytes can reach a listener',
    'cuts off a peer that stops inside a frame (or the handshake) after partialFrameTimeoutMs, with TimeoutError; idle connections stay':
      'no frames and no handshake: a message arrives whole or not at all, so no peer can stop inside one',
    'refuses a frame that announces more than maxMessageSize from its header, without waiting for the payload':
      'no frame headers: both ends agree on the smaller maxMessageSize when the connection opens, and an oversized send fails at the sender (MessageTooLargeError) before anything is on the wire',
  },
  knownGaps: {
    'abort: pending sends fail with ConnectionClosedError and the peer sees the connection end':
      'no flow control: send() settles at once whatever the peer has not read (receiveHighWaterMark, sendHighWaterMark are ignored), so no send is ever pending',
    'bounds memory while 200 MB go to a reader that pauses (the sender awaits each send)':
      'no flow control: a sender that awaits each send never stalls while the reader pauses; every unread byte piles up in the receiving Connection',
    'aborts a connection whose send queue passes maxSendQueueBytes (sends not awaited, the peer not reading) with SendQueueFullError':
      'no send queue: maxSendQueueBytes is ignored and SendQueueFullError never happens',
  },
};

const skipped = new Map<string, string>([
  ...Object.entries(harness.notApplicable).map(([title, why]): [string, string] => [title, `not applicable: ${why}`]),
  ...Object.entries(harness.knownGaps).map(([title, why]): [string, string] => [
    title,
    `KNOWN GAP of the simulated network (reported): ${why}`,
  ]),
]);
const seen = new Set<string>();

beforeEach((ctx) => {
  seen.add(ctx.task.name);
  const reason = skipped.get(ctx.task.name);
  if (reason === undefined) return;
  console.warn(`[${harness.name}] SKIPPED "${ctx.task.name}": ${reason}`);
  ctx.skip(reason);
});

describeTransportCompliance(harness);

afterAll(async () => {
  pumping = false;
  await pump;
  const stale = [...skipped.keys()].filter((title) => !seen.has(title));
  expect(stale, 'skip entries whose test the compliance suite no longer has').toEqual([]);
  expect(seen.size, 'tests the suite registered').toBe(COMPLIANCE_TEST_COUNT);
  expect(sim.scheduler.errors, 'errors thrown inside the simulation').toEqual([]);
});
