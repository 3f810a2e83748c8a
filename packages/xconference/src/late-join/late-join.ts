import { JoinError } from '../errors.js';
import { bigReqEnable, isBigReqEnable, queryBigRequests, withServerOpcode } from '../extensions/big-requests.js';
import { Opcode } from '../generated/xproto.js';
import { INTERNAL, type ServerLink } from '../session/server-link.js';
import { convertZPixmap, type ImageFormat } from '../translate/image-convert.js';
import { translateRequest } from '../translate/translate.js';
import { read16, read32, write16 } from '../wire/bytes.js';
import { planReplay, RequestEncoder, type ReplayPlan } from './replay-plan.js';
import type { ResourceTracker } from './resource-tracker.js';

/** What a late join needs from its session. */
export interface JoinHost {
  readonly le: boolean;
  readonly master: ServerLink;
  readonly tracker: ResourceTracker;
  /** The application's last request number (the proxy's own requests map to it). */
  appSeq(): number;
  /** Atoms the application has interned, by name (the master's numbers). */
  appAtoms(): ReadonlyMap<string, number>;
  /** Records that `name` is `atom` on the new server. */
  learnAtom(name: string, atom: number): void;
  /** The application's BIG-REQUESTS opcode if it enabled BIG-REQUESTS (else 0). */
  bigRequestsOpcode(): number;
  log(line: string): void;
}

/** Counts of one late join, for tests and diagnostics. */
export interface JoinStats {
  atoms: number;
  replayedRequests: number;
  images: number;
  imageBytes: number;
  queuedRequests: number;
  skipped: number;
}

interface Queued {
  readonly req: Buffer;
  readonly opcode: number;
  readonly appSeq: number;
}

/** Largest total of requests queued for the newcomer while it joins (the join fails beyond). */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/** Largest total of pixmap contents copied from the master for one join. */
const MAX_IMAGE_BYTES = 64 * 1024 * 1024;

/**
 * Brings a new server up to date with a running application. At the join point it plans the replay from
 * the tracker, asks the master for pixmap contents (GetImage, the proxy's own requests) and interns the
 * application's atoms on the new server; requests the application sends meanwhile are queued. When both
 * servers have answered, `complete()` writes the replay and then the queued requests, in order.
 */
export class LateJoin {
  readonly stats: JoinStats = { atoms: 0, replayedRequests: 0, images: 0, imageBytes: 0, queuedRequests: 0, skipped: 0 };
  private readonly queue: Queued[] = [];
  private readonly plan: ReplayPlan;
  private readonly imageData = new Map<number, { depth: number; data: Buffer }>();
  private failed: ((err: Error) => void) | null = null;
  private queuedBytes = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private done = false;

  constructor(
    readonly link: ServerLink,
    private readonly host: JoinHost,
  ) {
    this.plan = planReplay(host.tracker, host.le);
  }

  get name(): string {
    return this.link.name;
  }

  /** Keeps a request the application sent during the join, for the new server (bounded: else the join fails). */
  enqueue(req: Buffer, opcode: number, appSeq: number): void {
    if (this.done) return;
    this.queuedBytes += req.length;
    if (this.queuedBytes > MAX_QUEUED_BYTES) {
      this.fail(`more than ${MAX_QUEUED_BYTES} bytes of requests queued while joining`);
      return;
    }
    this.queue.push({ req: Buffer.from(req), opcode, appSeq });
  }

  /** Aborts the join (the new server failed or left, or the session closed): prepare() rejects with JoinError `failed`. */
  fail(reason: string): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    this.queue.length = 0;
    this.failed?.(new JoinError('failed', `${this.link.name}: ${reason}`));
  }

  /**
   * Sends the proxy's own requests to the master and the new server; resolves when both have answered,
   * rejects if that takes longer than `timeoutMs` or the join fails.
   */
  prepare(timeoutMs = 30_000): Promise<void> {
    const { le, master } = this.host;
    const link = this.link;
    return new Promise<void>((resolve, reject) => {
      this.failed = reject;
      this.timer = setTimeout(() => this.fail(`timed out after ${timeoutMs} ms waiting for the servers' answers`), timeoutMs);
      let waiting = 2;
      const answered = (): void => {
        if (--waiting !== 0 || this.done) return;
        if (this.timer) clearTimeout(this.timer);
        resolve();
      };
      // The master: the contents of every live pixmap, as of now.
      let budget = MAX_IMAGE_BYTES;
      for (const img of this.plan.images) {
        const size = img.width * img.height * (img.depth === 1 ? 1 / 8 : 4);
        const layout = imageLayout(master, link, img.depth);
        if (!layout) {
          this.plan.skipped.push(
            `pixmap 0x${img.pixmap.toString(16)}: contents not copied (no image layout for depth ${img.depth} on ${link.name})`,
          );
          continue;
        }
        if (size > budget) {
          this.plan.skipped.push(`pixmap 0x${img.pixmap.toString(16)}: contents not copied (over ${MAX_IMAGE_BYTES} bytes of images)`);
          continue;
        }
        budget -= size;
        const req = Buffer.alloc(20);
        req[0] = Opcode.GetImage;
        req[1] = 2; // ZPixmap
        write16(req, 2, 5, le);
        writeWord(req, 4, img.pixmap, le);
        write16(req, 8, 0, le);
        write16(req, 10, 0, le);
        write16(req, 12, img.width, le);
        write16(req, 14, img.height, le);
        writeWord(req, 16, 0xffffffff, le);
        master.sendInternal(req, this.host.appSeq(), (reply) => {
          // This runs as the master's reply, but what it computes depends on the newcomer's setup: a failure
          // here must cost the newcomer a pixmap's contents, never the master its connection (that would
          // close the conference).
          try {
            const data = reply.subarray(32, 32 + 4 * read32(reply, 4, le));
            const out = layout.convert
              ? convertZPixmap(data, img.width, img.height, layout.convert.from, layout.convert.to, layout.convert.pixel)
              : Buffer.from(data);
            if (out) this.imageData.set(img.pixmap, { depth: layout.depth, data: out });
            else this.plan.skipped.push(`pixmap 0x${img.pixmap.toString(16)}: contents not copied (short image or unsupported layout)`);
          } catch (err) {
            this.plan.skipped.push(`pixmap 0x${img.pixmap.toString(16)}: contents not copied (${(err as Error).message})`);
          }
        });
      }
      // The master's size of each top-level window (a window manager may have resized it).
      for (const top of this.plan.topLevels) {
        const req = Buffer.alloc(8);
        req[0] = Opcode.GetGeometry;
        write16(req, 2, 2, le);
        writeWord(req, 4, top.id, le);
        master.sendInternal(req, this.host.appSeq(), (reply) => {
          if (reply.length < 24 || read16(reply, 16, le) === 0 || read16(reply, 18, le) === 0) return;
          top.request.set(reply.subarray(16, 22), 16); // width, height, border width
        });
      }
      master.sendInternal(getInputFocus(le), this.host.appSeq(), answered);

      // The new server: the application's atoms, then BIG-REQUESTS if the application uses it.
      for (const [name, appAtom] of this.host.appAtoms()) {
        const body = Buffer.alloc(8 + name.length + ((4 - (name.length & 3)) & 3));
        body[0] = Opcode.InternAtom;
        write16(body, 2, body.length / 4, le);
        write16(body, 4, name.length, le);
        body.write(name, 8, 'latin1');
        link.sendInternal(body, this.host.appSeq(), (reply) => {
          const atom = read32(reply, 8, le);
          if (atom !== 0) {
            this.host.learnAtom(name, atom);
            this.stats.atoms++;
          } else this.host.log(`late join ${link.name}: atom ${name} (${appAtom}) not interned`);
        });
      }
      if (this.host.bigRequestsOpcode() !== 0) {
        link.sendInternal(queryBigRequests(le), this.host.appSeq(), (reply) => {
          if (reply[8] !== 1) {
            this.host.log(`late join ${link.name}: the server lacks BIG-REQUESTS`);
            answered();
            return;
          }
          link.bigRequestsOpcode = reply[9]!;
          link.sendInternal(bigReqEnable(reply[9]!, le), this.host.appSeq(), () => {});
          link.sendInternal(getInputFocus(le), this.host.appSeq(), answered);
        });
      } else link.sendInternal(getInputFocus(le), this.host.appSeq(), answered);
    });
  }

  /** Writes the replay, then the requests queued during the join. Call once `prepare()` has resolved. */
  complete(): void {
    if (this.done) return;
    this.done = true;
    const { le } = this.host;
    const link = this.link;
    const appSeq = this.host.appSeq();
    const enc = new RequestEncoder(le);
    const send = (req: Buffer): void => {
      link.send(translateRequest(req, link.ids, le), req[0]!, appSeq, INTERNAL);
      this.stats.replayedRequests++;
    };
    for (const r of this.plan.before) send(r);
    for (const img of this.plan.images) {
      const image = this.imageData.get(img.pixmap);
      if (!image) continue;
      this.stats.images++;
      this.stats.imageBytes += image.data.length;
      for (const r of enc.putImage(img.pixmap, this.plan.imageGc, image.depth, img.width, img.height, image.data)) send(r);
    }
    for (const r of this.plan.after) send(r);
    const bigOpcode = this.host.bigRequestsOpcode();
    for (const q of this.queue) {
      let out = translateRequest(q.req, link.ids, le);
      if (isBigReqEnable(q.opcode, bigOpcode)) out = withServerOpcode(out, q.req, link.bigRequestsOpcode);
      link.send(out, q.opcode, q.appSeq, 0);
    }
    this.stats.queuedRequests = this.queue.length;
    this.queue.length = 0;
    this.stats.skipped = this.plan.skipped.length;
    for (const line of this.plan.skipped) this.host.log(`late join ${link.name}: ${line}`);
    this.host.log(
      `late join ${link.name}: replayed ${this.stats.replayedRequests} requests (${this.stats.images} pixmap images, ${this.stats.atoms} atoms), then ${this.stats.queuedRequests} queued`,
    );
  }
}

/**
 * How a pixmap image of `depth` moves from the master to `link`'s server: as is when both lay it out alike,
 * else re-encoded (pixel values converted for the application's root depth). Null if it cannot be done.
 */
function imageLayout(
  master: ServerLink,
  link: ServerLink,
  depth: number,
): { depth: number; convert: { from: ImageFormat; to: ImageFormat; pixel: (v: number) => number } | null } | null {
  const target = link.ids.depthToServer(depth);
  const fm = master.setup.pixmapFormats.find((f) => f.depth === depth);
  const fs = link.setup.pixmapFormats.find((f) => f.depth === target);
  if (!fm || !fs) return null;
  const from: ImageFormat = { le: master.setup.imageByteOrder === 'LE', bitsPerPixel: fm.bitsPerPixel, scanlinePad: fm.scanlinePad };
  const to: ImageFormat = { le: link.setup.imageByteOrder === 'LE', bitsPerPixel: fs.bitsPerPixel, scanlinePad: fs.scanlinePad };
  const sameLayout =
    from.bitsPerPixel === to.bitsPerPixel && from.scanlinePad === to.scanlinePad && (from.le === to.le || from.bitsPerPixel <= 8);
  const rootDepth = depth === link.ids.appDepth;
  if (depth === 1) return sameLayout ? { depth, convert: null } : null; // bitmaps: bit order assumed alike
  if (sameLayout && target === depth && !(rootDepth && link.ids.convertsPixels)) return { depth, convert: null };
  const pixel = rootDepth ? (v: number) => link.ids.pixelToServer(v) : (v: number) => v;
  if (!rootDepth && target !== depth) return null;
  return { depth: target, convert: { from, to, pixel } };
}

function getInputFocus(le: boolean): Buffer {
  const b = Buffer.alloc(4);
  b[0] = Opcode.GetInputFocus;
  write16(b, 2, 1, le);
  return b;
}

function writeWord(b: Buffer, off: number, v: number, le: boolean): void {
  if (le) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
