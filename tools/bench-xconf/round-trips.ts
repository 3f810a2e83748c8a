// A fixed number of QueryPointer round trips (one outstanding at a time) on a display, with the CPU time
// (user + system, from /proc/<pid>/stat) that a relay process spent meanwhile. CPU per round trip is a
// property of the relay itself, much less disturbed by other load on the machine than a rate.
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';

const TICK_US = 10_000; // /proc/<pid>/stat counts clock ticks of 10 ms (USER_HZ 100)

function cpuUs(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * TICK_US, system: Number(fields[12]) * TICK_US };
}

export interface RoundTripResult {
  /** Round trips per second. */
  rate: number;
  /** The relay's CPU time per round trip, microseconds. */
  userUs: number;
  systemUs: number;
}

/** The first cookie (MIT-MAGIC-COOKIE-1 data) in an Xauthority file: family, address, number, name, data. */
export function cookieFrom(xauthorityPath: string): Buffer {
  const b = readFileSync(xauthorityPath);
  let at = 2;
  const field = (): Buffer => {
    const len = b.readUInt16BE(at);
    const v = b.subarray(at + 2, at + 2 + len);
    at += 2 + len;
    return v;
  };
  field(); // address
  field(); // display number
  field(); // name
  return Buffer.from(field());
}

/** Runs `count` QueryPointer round trips on display `n`; `relayPid` is measured if given; `cookie`: the
 * conference's MIT-MAGIC-COOKIE-1 (the daemon requires it by default). */
export function roundTrips(n: number, count: number, relayPid?: number, cookie?: Buffer): Promise<RoundTripResult> {
  return new Promise((resolve, reject) => {
    const sock = connect(`/tmp/.X11-unix/X${n}`);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`round trips on :${n} timed out`));
    }, 120_000);
    const name = cookie ? Buffer.from('MIT-MAGIC-COOKIE-1') : Buffer.alloc(0);
    const data = cookie ?? Buffer.alloc(0);
    const pad = (k: number): number => (k + 3) & ~3;
    const setup = Buffer.alloc(12 + pad(name.length) + pad(data.length));
    setup[0] = 0x6c; // 'l': little-endian
    setup.writeUInt16LE(11, 2);
    setup.writeUInt16LE(name.length, 6);
    setup.writeUInt16LE(data.length, 8);
    name.copy(setup, 12);
    data.copy(setup, 12 + pad(name.length));
    sock.write(setup);
    const req = Buffer.alloc(8);
    req[0] = 38; // QueryPointer
    req.writeUInt16LE(2, 2);
    let buf: Buffer = Buffer.alloc(0);
    let started = false;
    let done = 0;
    let t0 = 0n;
    let c0 = { user: 0, system: 0 };
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!started) {
        if (buf.length < 8) return;
        if (buf[0] !== 1) return reject(new Error(`:${n} refused the connection`));
        const size = 8 + 4 * buf.readUInt16LE(6);
        if (buf.length < size) return;
        const vendorLen = buf.readUInt16LE(24);
        const formats = buf[29]!;
        const root = buf.readUInt32LE(40 + ((vendorLen + 3) & ~3) + 8 * formats);
        req.writeUInt32LE(root, 4);
        buf = buf.subarray(size);
        started = true;
        if (relayPid !== undefined) c0 = cpuUs(relayPid);
        t0 = process.hrtime.bigint();
        sock.write(req);
        return;
      }
      while (buf.length >= 32) {
        const size = buf[0] === 1 ? 32 + 4 * buf.readUInt32LE(4) : 32;
        if (buf.length < size) return;
        const type = buf[0];
        buf = buf.subarray(size);
        if (type === 0) {
          clearTimeout(timer);
          sock.destroy();
          return reject(new Error(`X error ${buf[1]} on :${n}`));
        }
        if (type !== 1) continue;
        if (++done < count) {
          sock.write(req);
          continue;
        }
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        const c1 = relayPid !== undefined ? cpuUs(relayPid) : c0;
        clearTimeout(timer);
        sock.destroy();
        return resolve({ rate: count / seconds, userUs: (c1.user - c0.user) / count, systemUs: (c1.system - c0.system) / count });
      }
    });
  });
}
