import type { BusyPoll } from './busy-poll.js';
import type { Socket } from 'node:net';
import { EventCategory, RequestCategory, eventCategory, requestCategory } from './categories.js';
import { XProtocolError } from './errors.js';
import { LateJoin } from './late-join.js';
import { ResourceTracker, TRACKED_OPCODES } from './resource-tracker.js';
import { connectServer } from './server-connect.js';
import { RequestFramer } from './framing.js';
import { REQUESTS } from './generated/xproto.js';
import { ReplyOrder } from './reply-order.js';
import { IdMap } from './id-map.js';
import { INTERNAL, RESPONDER, ServerLink, setSequence } from './server-link.js';
import {
  encodeClientSetup,
  encodeSetupFailed,
  parseClientSetup,
  parseServerSetup,
  serverSetupSize,
  type ClientSetup,
  type ServerSetup,
} from './setup.js';
import { SocketWriter } from './socket-writer.js';
import { readSocket } from './socket-reader.js';
import { translateError, translateEvent, translateReply, translateRequest } from './translate.js';
import type { FocusTrigger } from './trigger.js';
import { read16, read32, write16, write32 } from './wire.js';

const OP_INTERN_ATOM = 16;
const OP_QUERY_EXTENSION = 98;
const OP_GET_KEYBOARD_MAPPING = 101;
const OP_LIST_EXTENSIONS = 99;
const OP_LIST_FONTS_WITH_INFO = 50;
const EV_KEY_PRESS = 2;
const EV_BUTTON_PRESS = 4;

/** Extensions the conference supports; QueryExtension answers "not present" for all others. */
export const SUPPORTED_EXTENSIONS: ReadonlySet<string> = new Set(['BIG-REQUESTS']);

/** How to reach one participant's X server. */
export interface Upstream {
  readonly name: string;
  connect(): Socket;
  /** X authorisation to present (e.g. MIT-MAGIC-COOKIE-1 from XAUTHORITY); none if absent. */
  readonly auth?: { readonly name: string; readonly data: Buffer } | undefined;
}

export interface SessionOptions {
  readonly id: number;
  /** The application's connection. */
  readonly app: Socket;
  /** Bytes already read from `app` by whoever accepted it (e.g. a setup checked for a cookie); handled first. */
  readonly prelude?: Buffer;
  /** Participants' servers; index 0 is the master. */
  readonly upstreams: readonly Upstream[];
  readonly trigger: FocusTrigger;
  /** Called once when the session ends, with the reason. */
  readonly onClose?: (session: ApplicationSession, reason: string) => void;
  /** Called when the master's server connection is lost (the conference must close). */
  readonly onMasterLost?: (session: ApplicationSession) => void;
  readonly onFocusChange?: (session: ApplicationSession, participant: string) => void;
  /** Called when a non-master participant's server is found gone (it closed, failed, or refused setup). */
  readonly onParticipantLost?: (session: ApplicationSession, participant: string) => void;
  readonly log?: (line: string) => void;
  /** Milliseconds to wait for the servers' setup replies. */
  readonly setupTimeoutMs?: number;
  /** Milliseconds a late join may wait for the master's and the newcomer's answers (default 30 s). */
  readonly joinTimeoutMs?: number;
  /** Polls for answers without sleeping for a while after each write (see BusyPoll); none = sleep at once. */
  readonly busyPoll?: BusyPoll;
}

/** Counts kept for tests and diagnostics. */
export interface SessionStats {
  requests: number;
  forwardedReplies: number;
  forwardedEvents: number;
  forwardedErrors: number;
  droppedEvents: number;
  droppedErrors: number;
  droppedReplies: number;
  /** Times a server's connection held more than the limit unsent (the application was paused meanwhile). */
  serverBacklogs: number;
  /** Times the application's connection held more than the limit unsent (the servers were paused meanwhile). */
  appBacklogs: number;
}

/**
 * One application connected to the conference: its requests are classified and sent to the master,
 * the input focus or all servers; replies, errors and events come back filtered by category and role,
 * with sequence numbers, resource ids and atoms translated per server.
 */
export class ApplicationSession {
  readonly id: number;
  readonly stats: SessionStats = {
    requests: 0,
    forwardedReplies: 0,
    forwardedEvents: 0,
    forwardedErrors: 0,
    droppedEvents: 0,
    droppedErrors: 0,
    droppedReplies: 0,
    serverBacklogs: 0,
    appBacklogs: 0,
  };
  private readonly app: Socket;
  private readonly appWriter: SocketWriter;
  private readonly opts: SessionOptions;
  private le = true;
  private setupBuf: Buffer | null = Buffer.alloc(0);
  private clientSetup: ClientSetup | null = null;
  private early: Buffer[] = [];
  private framer: RequestFramer | null = null;
  private links: ServerLink[] = [];
  private live: ServerLink[] = [];
  private focus: ServerLink | null = null;
  private appSeq = 0;
  private lastDelivered = 0;
  private closed = false;
  /** Names of InternAtom / QueryExtension requests awaiting replies from `remaining` servers. */
  private readonly internAtomNames = new Map<number, { name: string; remaining: number }>();
  private readonly extensionNames = new Map<number, { name: string; remaining: number }>();
  private readonly appAtomByName = new Map<string, number>();
  private readonly serverAtomByName: Array<Map<string, number>> = [];
  private appBigRequestsOpcode = 0;
  private readonly onRequest = (req: Buffer): void => this.handleRequest(req);
  private readonly order = new ReplyOrder<ServerLink>(
    (msg, seq) => this.deliver(msg, seq),
    () => this.lastDelivered,
  );
  /** Copies of requests answered by a non-master server, to send again to the master if that server leaves. */
  private readonly resend = new Map<number, Buffer>();
  /** The application's live resources, replayed on a participant that joins later (null before setup). */
  tracker: ResourceTracker | null = null;
  /** Participants joining while the application runs (their requests are queued until the replay is written). */
  private joins: LateJoin[] = [];
  private nextLinkIndex: number;
  private startWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(opts: SessionOptions) {
    this.id = opts.id;
    this.opts = opts;
    this.app = opts.app;
    this.nextLinkIndex = opts.upstreams.length;
    this.appWriter = new SocketWriter(opts.app, undefined, opts.busyPoll);
    // The application reads slower than the servers send: stop reading the servers until it catches up.
    this.appWriter.onBacklog = (backlogged) => {
      if (backlogged) this.stats.appBacklogs++;
      for (const l of this.live) {
        if (backlogged) l.socket.pause();
        else l.socket.resume();
      }
    };
    this.app.setNoDelay?.(true);
    readSocket(this.app, (chunk) => this.onAppData(chunk));
    this.app.on('error', () => this.close('application connection error'));
    this.app.on('close', () => {
      const pending = this.framer?.pending ?? 0;
      if (pending > 0) this.fail(new XProtocolError('truncated', `application disconnected in the middle of a request (${pending} bytes)`));
      else this.close('application disconnected');
    });
    if (opts.prelude !== undefined && opts.prelude.length > 0) this.onAppData(opts.prelude);
  }

  /** The participant that is currently the input focus of this application. */
  get focusName(): string | null {
    return this.focus?.name ?? null;
  }

  /** Names of the servers this application is still connected to (master first). */
  get participants(): string[] {
    return this.live.map((l) => l.name);
  }

  /** The protocol error that closed this application's connection, if any. */
  lastError: XProtocolError | null = null;

  get isClosed(): boolean {
    return this.closed;
  }

  /** Makes the named participant the input focus (a control action). Returns false if unknown. */
  setFocus(name: string): boolean {
    const link = this.live.find((l) => l.name === name);
    if (!link) return false;
    this.changeFocus(link);
    return true;
  }

  /**
   * A participant joins while the application runs: its server gets the application's live resources
   * (replayed from the tracker, pixmap contents copied from the master), then every later request. Rejects if
   * the name is already connected, the server cannot be reached, or the application closes meanwhile.
   */
  async addParticipant(up: Upstream): Promise<void> {
    if (this.closed) throw new Error(`application ${this.id} is closed`);
    if (!this.framer) await new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
    if (this.live.some((l) => l.name === up.name) || this.joins.some((j) => j.name === up.name)) {
      throw new Error(`${up.name} is already a participant of application ${this.id}`);
    }
    const conn = await connectServer(up, this.le ? 'LE' : 'BE', this.opts.setupTimeoutMs ?? 10_000);
    if (this.closed) {
      conn.socket.destroy();
      throw new Error(`application ${this.id} closed while ${up.name} was joining`);
    }
    const master = this.links[0]!;
    const index = this.nextLinkIndex++;
    const link = new ServerLink(index, up.name, conn.socket, conn.setup, new IdMap(master.setup, conn.setup), this.le, this.opts.busyPoll);
    this.serverAtomByName[index] = new Map();
    const join = new LateJoin(link, {
      le: this.le,
      master,
      tracker: this.tracker!,
      appSeq: () => this.appSeq,
      appAtoms: () => this.appAtomByName,
      learnAtom: (name, atom) => {
        this.serverAtomByName[index]!.set(name, atom);
        const a = this.appAtomByName.get(name);
        if (a !== undefined) link.ids.learnAtom(a, atom);
      },
      bigRequestsOpcode: () => this.appBigRequestsOpcode,
      log: (line) => this.opts.log?.(`app ${this.id}: ${line}`),
    });
    this.links.push(link);
    this.joins.push(join);
    const gone = (): void => {
      join.fail('connection lost while joining');
      this.onServerGone(link);
    };
    link.onMessage = (msg) => this.handleServerMessage(link, msg);
    this.watchBacklog(link);
    readSocket(link.socket, (chunk) => this.onServerData(link, chunk));
    link.socket.on('error', gone);
    link.socket.on('close', gone);
    this.opts.log?.(`app ${this.id}: ${up.name} is joining`);
    try {
      const ready = join.prepare(this.opts.joinTimeoutMs);
      this.injectSetupRequests(link);
      if (conn.rest.length) this.onServerData(link, conn.rest);
      await ready;
    } catch (err) {
      this.joins = this.joins.filter((j) => j !== join);
      this.links = this.links.filter((l) => l !== link);
      link.closed = true;
      link.socket.destroy();
      throw err;
    }
    this.joins = this.joins.filter((j) => j !== join);
    if (this.closed || link.closed) throw new Error(`${up.name}: left while joining`);
    join.complete();
    this.lastJoin = join.stats;
    this.live.push(link);
    this.opts.log?.(`app ${this.id}: ${up.name} joined`);
  }

  /** Counts of the last completed late join (null if none). */
  lastJoin: LateJoin['stats'] | null = null;

  /**
   * A participant leaves: its connection for this application closes; if it held the input focus, the
   * master takes it. The master leaving closes the application. Returns false if `name` is not connected.
   */
  removeParticipant(name: string): boolean {
    const join = this.joins.find((j) => j.name === name);
    if (join) {
      join.fail('left while joining');
      return true;
    }
    if (!this.framer && !this.closed && this.opts.upstreams.some((u) => u.name === name)) {
      // Still connecting: leave as soon as the session has started.
      this.startWaiters.push({ resolve: () => queueMicrotask(() => this.removeParticipant(name)), reject: () => {} });
      return true;
    }
    const link = this.live.find((l) => l.name === name);
    if (!link) return false;
    if (link.isMaster) {
      this.close(`master ${name} left the conference`);
      this.opts.onMasterLost?.(this);
      return true;
    }
    this.onServerGone(link);
    link.socket.destroy();
    return true;
  }

  /** Off the hot path: a request that changes tracked resources, or any request while someone joins. */
  private observe(req: Buffer, opcode: number, appSeq: number, category: RequestCategory): void {
    if (TRACKED_OPCODES[opcode] !== 0) this.tracker!.observe(req);
    if (this.joins.length === 0 || (category !== RequestCategory.DrawOrChange && category !== RequestCategory.InitResourceIds)) return;
    const pending = opcode === OP_INTERN_ATOM ? this.internAtomNames.get(appSeq) : opcode === OP_QUERY_EXTENSION ? this.extensionNames.get(appSeq) : undefined;
    if (pending) pending.remaining += this.joins.length;
    for (const j of this.joins) j.enqueue(req, opcode, appSeq);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.log?.(`app ${this.id}: closed (${reason})`);
    for (const j of this.joins) j.fail(`application closed (${reason})`);
    for (const w of this.startWaiters.splice(0)) w.reject(new Error(`application ${this.id} closed (${reason})`));
    this.app.destroy();
    for (const l of this.links) l.socket.destroy();
    this.opts.onClose?.(this, reason);
  }

  // ---- connection setup ----------------------------------------------------------------------------

  private onAppData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      if (this.framer) {
        this.framer.push(chunk, this.onRequest);
        return;
      }
      if (this.clientSetup) {
        this.early.push(chunk);
        return;
      }
      this.setupBuf = Buffer.concat([this.setupBuf ?? Buffer.alloc(0), chunk]);
      const setup = parseClientSetup(this.setupBuf);
      if (!setup) {
        if (this.setupBuf.length > 65536) throw new XProtocolError('malformed-setup', 'connection setup too long');
        return;
      }
      if (setup.major !== 11) throw new XProtocolError('malformed-setup', `unsupported protocol version ${setup.major}`);
      this.clientSetup = setup;
      this.le = setup.byteOrder === 'LE';
      const rest = this.setupBuf.subarray(setup.size);
      if (rest.length) this.early.push(Buffer.from(rest));
      this.setupBuf = null;
      this.connectUpstreams();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    const typed =
      err instanceof XProtocolError ? err : new XProtocolError('malformed-request', `malformed request: ${err instanceof Error ? err.message : String(err)}`);
    const msg = `${typed.name}(${typed.code}): ${typed.message}`;
    this.lastError = typed;
    this.opts.log?.(`app ${this.id}: ${msg}`);
    this.close(msg);
  }

  private connectUpstreams(): void {
    const n = this.opts.upstreams.length;
    const results: Array<{ socket: Socket; setup: ServerSetup; raw: Buffer; rest: Buffer } | { error: string }> = new Array(n);
    let pending = n;
    const finishers: Array<(r: { error: string }) => void> = [];
    // A server that does not answer setup in time is left out (the master's absence fails the session).
    const timer = setTimeout(() => {
      for (const f of finishers) f({ error: 'timed out waiting for the server setup reply' });
    }, this.opts.setupTimeoutMs ?? 10_000);
    const done = (): void => {
      if (--pending > 0) return;
      clearTimeout(timer);
      if (this.closed) {
        for (const r of results) if (r && 'socket' in r) r.socket.destroy();
        return;
      }
      this.startSession(results);
    };
    this.opts.upstreams.forEach((up, i) => {
      let buf = Buffer.alloc(0);
      let finished = false;
      const sock = up.connect();
      sock.setNoDelay?.(true);
      const finish = (r: (typeof results)[number]): void => {
        if (finished) return;
        finished = true;
        sock.removeListener('data', onData);
        results[i] = r;
        if ('error' in r) sock.destroy();
        done();
      };
      const onData = (chunk: Buffer): void => {
        buf = Buffer.concat([buf, chunk]);
        const size = serverSetupSize(buf, this.le);
        if (size === null || buf.length < size) return;
        try {
          const setup = parseServerSetup(buf, this.le);
          if (setup.status !== 'success') {
            finish({ error: `${up.name} refused the connection: ${setup.reason}` });
            if (i === 0) this.masterRefusal = Buffer.from(buf.subarray(0, size));
            return;
          }
          finish({ socket: sock, setup, raw: Buffer.from(buf.subarray(0, size)), rest: Buffer.from(buf.subarray(size)) });
        } catch (err) {
          finish({ error: `${up.name}: ${(err as Error).message}` });
        }
      };
      finishers.push(finish);
      sock.on('data', onData);
      sock.once('error', (err) => finish({ error: `${up.name}: ${err.message}` }));
      sock.once('close', () => finish({ error: `${up.name}: connection closed during setup` }));
      sock.write(encodeClientSetup(this.clientSetup!.byteOrder, up.auth?.name ?? '', up.auth?.data));
    });
  }

  private masterRefusal: Buffer | null = null;

  private startSession(results: Array<{ socket: Socket; setup: ServerSetup; raw: Buffer; rest: Buffer } | { error: string }>): void {
    const master = results[0]!;
    if ('error' in master) {
      this.app.write(this.masterRefusal ?? encodeSetupFailed(`tandem-xconf: ${master.error}`, this.le));
      this.opts.log?.(`app ${this.id}: ${master.error}`);
      this.app.end();
      this.close(master.error);
      return;
    }
    results.forEach((r, i) => {
      const up = this.opts.upstreams[i]!;
      if ('error' in r) {
        this.opts.log?.(`app ${this.id}: participant ${up.name} left out: ${r.error}`);
        this.opts.onParticipantLost?.(this, up.name);
        return;
      }
      const link = new ServerLink(i, up.name, r.socket, r.setup, new IdMap(master.setup, r.setup), this.le, this.opts.busyPoll);
      this.links.push(link);
      this.serverAtomByName[i] = new Map();
    });
    this.live = [...this.links];
    this.focus = this.links[0]!;
    this.framer = new RequestFramer(this.le);
    const ms = master.setup;
    this.tracker = new ResourceTracker(this.le, ms.screens[0]?.root ?? 0, ms.resourceIdBase >>> 0, ms.resourceIdMask >>> 0, (line) => this.opts.log?.(`app ${this.id}: ${line}`));
    for (const w of this.startWaiters.splice(0)) w.resolve();
    for (const link of this.links) {
      link.onMessage = (msg) => this.handleServerMessage(link, msg);
      this.watchBacklog(link);
      readSocket(link.socket, (chunk) => this.onServerData(link, chunk));
      link.socket.on('error', () => this.onServerGone(link));
      link.socket.on('close', () => this.onServerGone(link));
      this.injectSetupRequests(link);
    }
    this.appWriter.write(master.raw);
    for (const link of this.links) {
      const r = results[link.index] as { rest: Buffer };
      if (r.rest.length) this.onServerData(link, r.rest);
    }
    const early = this.early;
    this.early = [];
    for (const chunk of early) this.onAppData(chunk);
  }

  /** The proxy's own requests at connection start: the focus trigger's keycode on each server. */
  private injectSetupRequests(link: ServerLink): void {
    const t = this.opts.trigger;
    if (t.kind !== 'key') return;
    const first = link.setup.minKeycode;
    const count = link.setup.maxKeycode - first + 1;
    const req = Buffer.alloc(8);
    req[0] = OP_GET_KEYBOARD_MAPPING;
    write16(req, 2, 2, this.le);
    req[4] = first;
    req[5] = count;
    link.sendInternal(req, this.appSeq, (reply) => {
      const per = reply[1] ?? 0;
      if (per === 0) return;
      for (let k = 0; k < count; k++) {
        for (let j = 0; j < per; j++) {
          const off = 32 + 4 * (k * per + j);
          if (off + 4 > reply.length) return;
          if (read32(reply, off, this.le) === t.keysym) {
            link.triggerKeycode = first + k;
            return;
          }
        }
      }
    });
  }

  /**
   * Flow control towards one server: while any server holds more than its writer's limit unsent (a slow
   * participant), the application's connection is not read, so the daemon's memory stays bounded and the
   * conference goes at the pace of its slowest member (all see the same application).
   */
  private watchBacklog(link: ServerLink): void {
    link.writer.onBacklog = (backlogged) => {
      if (backlogged) this.stats.serverBacklogs++;
      this.updateAppReading();
    };
  }

  /** Reads the application only while none of its open server connections is backlogged. */
  private updateAppReading(): void {
    if (this.closed) return;
    if (this.links.some((l) => !l.closed && l.writer.backlogged)) this.app.pause();
    else this.app.resume();
  }

  private onServerGone(link: ServerLink): void {
    if (link.closed || this.closed) return;
    link.closed = true;
    if (link.writer.backlogged) this.updateAppReading(); // a gone server no longer holds the application back
    this.live = this.live.filter((l) => l !== link);
    if (link.isMaster) {
      this.opts.log?.(`app ${this.id}: master ${link.name} left`);
      this.close(`master ${link.name} left the conference`);
      this.opts.onMasterLost?.(this);
      return;
    }
    this.opts.log?.(`app ${this.id}: participant ${link.name} left`);
    this.opts.onParticipantLost?.(this, link.name);
    const master = this.links[0]!;
    if (this.focus === link) this.changeFocus(master);
    // Requests it had not answered are sent again to the master, which answers them instead.
    for (const appSeq of this.order.waitingOn(link)) {
      const req = this.resend.get(appSeq);
      this.resend.delete(appSeq);
      if (req) master.send(req, req[0]!, appSeq, RESPONDER);
    }
    this.order.reassign(link, master);
  }

  private changeFocus(link: ServerLink): void {
    if (this.focus === link) return;
    this.focus = link;
    this.opts.log?.(`app ${this.id}: input focus is now ${link.name}`);
    this.opts.onFocusChange?.(this, link.name);
  }

  // ---- requests: application → servers ------------------------------------------------------------

  private handleRequest(req: Buffer): void {
    const opcode = req[0]!;
    const appSeq = ++this.appSeq;
    this.stats.requests++;
    const isBigReqEnable = opcode >= 128 && opcode === this.appBigRequestsOpcode;
    const category = isBigReqEnable ? RequestCategory.InitResourceIds : requestCategory(opcode);
    if (opcode === OP_INTERN_ATOM || opcode === OP_QUERY_EXTENSION) {
      const pending = { name: req.toString('latin1', 8, 8 + read16(req, 4, this.le)), remaining: this.live.length };
      (opcode === OP_INTERN_ATOM ? this.internAtomNames : this.extensionNames).set(appSeq, pending);
    }
    if (isBigReqEnable) this.framer!.bigRequests = true;
    if (TRACKED_OPCODES[opcode] !== 0 || this.joins.length !== 0) this.observe(req, opcode, appSeq, category);
    const master = this.links[0]!;
    const spec = REQUESTS[opcode];
    if (isBigReqEnable || (spec !== undefined && spec.hasReply)) {
      const responder = category === RequestCategory.QueryDisplay || category === RequestCategory.InputDevices ? this.focus! : master;
      this.order.expect(appSeq, responder);
      if (responder !== master) this.resend.set(appSeq, Buffer.from(req));
    }
    switch (category) {
      case RequestCategory.DrawOrChange:
      case RequestCategory.InitResourceIds: {
        const live = this.live;
        for (let i = 0; i < live.length; i++) {
          const link = live[i]!;
          let out = link === master ? req : translateRequest(req, link.ids, this.le);
          // Each server's own opcode for BIG-REQUESTS (if its QueryExtension reply is not in yet, the
          // master's: servers of one build number their extensions alike).
          const bigOp = link.bigRequestsOpcode || opcode;
          if (isBigReqEnable && bigOp !== opcode) {
            if (out === req) out = Buffer.from(req);
            out[0] = bigOp;
          }
          link.send(out, opcode, appSeq, link === master ? RESPONDER : 0);
        }
        return;
      }
      case RequestCategory.QueryDisplay:
      case RequestCategory.InputDevices: {
        const focus = this.focus!;
        focus.send(focus === master ? req : translateRequest(req, focus.ids, this.le), opcode, appSeq, RESPONDER);
        return;
      }
      case RequestCategory.QueryServer:
        master.send(req, opcode, appSeq, RESPONDER);
        return;
    }
  }

  // ---- replies, errors, events: servers → application ---------------------------------------------

  private onServerData(link: ServerLink, chunk: Buffer): void {
    if (this.closed || link.closed) return;
    try {
      link.framer.push(chunk, link.onMessage);
    } catch (err) {
      // A server speaking garbage is treated as that participant leaving.
      this.opts.log?.(`app ${this.id}: ${link.name}: ${(err as Error).message}`);
      link.socket.destroy();
      this.onServerGone(link);
    }
  }

  private handleServerMessage(link: ServerLink, msg: Buffer): void {
    const type = msg[0]!;
    const le = this.le;
    const seq = read16(msg, 2, le);
    if (type === 1) {
      const flags = link.flagsOf[seq]!;
      if (flags & INTERNAL) {
        link.takeInternal(seq)?.(msg);
        return;
      }
      const opcode = link.opcodeOf[seq]!;
      const appSeq = link.appSeqOf[seq]!;
      if (opcode === OP_INTERN_ATOM) this.learnAtom(link, appSeq, read32(msg, 8, le));
      else if (opcode === OP_QUERY_EXTENSION) this.learnExtension(link, appSeq, msg);
      if (!(flags & RESPONDER)) {
        this.stats.droppedReplies++;
        return;
      }
      let out = link.isMaster ? msg : translateReply(msg, opcode, link.ids, le);
      if (opcode === OP_LIST_EXTENSIONS) out = filterExtensionList(out, le);
      // ListFontsWithInfo sends several replies; the last one has an empty name.
      const final = opcode !== OP_LIST_FONTS_WITH_INFO || msg[1] === 0;
      if (final && !link.isMaster) this.resend.delete(appSeq);
      this.order.offer(out, appSeq, true, final);
      this.stats.forwardedReplies++;
      return;
    }
    if (type === 0) {
      const flags = link.flagsOf[seq]!;
      if (flags & INTERNAL) {
        link.takeInternal(seq);
        this.opts.log?.(`app ${this.id}: ${link.name}: error ${msg[1]} for the proxy's own request`);
      }
      if (!(flags & RESPONDER)) {
        this.stats.droppedErrors++;
        return;
      }
      const out = link.isMaster ? msg : translateError(msg, link.ids, le);
      const appSeq = link.appSeqOf[seq]!;
      if (!link.isMaster) this.resend.delete(appSeq);
      this.order.offer(out, appSeq, false, true);
      this.stats.forwardedErrors++;
      return;
    }
    this.handleEvent(link, msg, seq);
  }

  private handleEvent(link: ServerLink, msg: Buffer, seq: number): void {
    const category = eventCategory(msg[0]!);
    let pass: boolean;
    switch (category) {
      case EventCategory.UserInteraction:
        if (link === this.focus) pass = true;
        else if (this.isFocusTrigger(link, msg)) {
          this.changeFocus(link);
          // A button trigger is also input (the click lands); a key chord is reserved for switching.
          pass = this.opts.trigger.kind === 'button';
        } else pass = false;
        break;
      case EventCategory.Redraw:
        pass = true;
        break;
      case EventCategory.FromOtherApplication:
      case EventCategory.ServerStateChange:
        pass = link.isMaster;
        break;
      case EventCategory.ResourceStateChange:
        pass = link === this.focus;
        break;
    }
    if (!pass) {
      this.stats.droppedEvents++;
      return;
    }
    const out = link.isMaster ? msg : translateEvent(msg, link.ids, this.le);
    this.stats.forwardedEvents++;
    if ((msg[0]! & 0x7f) === 11) {
      // KeymapNotify carries no sequence number.
      this.appWriter.write(out);
      return;
    }
    // Events never move the application's sequence backwards; only the master's advance it.
    this.order.offer(out, link.isMaster ? link.appSeqOf[seq]! : this.lastDelivered, false, false);
  }

  private isFocusTrigger(link: ServerLink, msg: Buffer): boolean {
    const t = this.opts.trigger;
    const code = msg[0]! & 0x7f;
    if (t.kind === 'button') return code === EV_BUTTON_PRESS && (t.button === 0 || msg[1] === t.button);
    if (t.kind === 'key') {
      if (code !== EV_KEY_PRESS || link.triggerKeycode === 0 || msg[1] !== link.triggerKeycode) return false;
      const state = read16(msg, 28, this.le);
      return (state & 0xff & ~2 & ~16) === t.modifiers; // ignore Lock and NumLock (Mod2)
    }
    return false;
  }

  private deliver(msg: Buffer, appSeq: number): void {
    if (appSeq > this.lastDelivered) this.lastDelivered = appSeq;
    setSequence(msg, appSeq, this.le);
    this.appWriter.write(msg);
  }

  private learnAtom(link: ServerLink, appSeq: number, atom: number): void {
    const pending = this.internAtomNames.get(appSeq);
    if (pending === undefined) return;
    if (--pending.remaining <= 0) this.internAtomNames.delete(appSeq);
    const name = pending.name;
    const byName = this.serverAtomByName[link.index]!;
    if (link.isMaster) {
      if (atom === 0) return;
      this.appAtomByName.set(name, atom);
      for (const l of this.links) {
        const s = this.serverAtomByName[l.index]!.get(name);
        if (s !== undefined) l.ids.learnAtom(atom, s);
      }
    } else {
      if (atom === 0) return;
      byName.set(name, atom);
      const a = this.appAtomByName.get(name);
      if (a !== undefined) link.ids.learnAtom(a, atom);
    }
  }

  private learnExtension(link: ServerLink, appSeq: number, reply: Buffer): void {
    const pending = this.extensionNames.get(appSeq);
    if (pending === undefined) return;
    if (--pending.remaining <= 0) this.extensionNames.delete(appSeq);
    const name = pending.name;
    const present = reply[8] === 1;
    if (name === 'BIG-REQUESTS' && present) link.bigRequestsOpcode = reply[9]!;
    if (!link.isMaster) return;
    if (SUPPORTED_EXTENSIONS.has(name) && present) {
      if (name === 'BIG-REQUESTS') this.appBigRequestsOpcode = reply[9]!;
      return;
    }
    // Not supported by the conference: answer "not present" so the client falls back to the core protocol.
    reply[8] = 0;
    reply[9] = 0;
    reply[10] = 0;
    reply[11] = 0;
  }
}


/** Rewrites a ListExtensions reply to list only the extensions the conference supports. */
export function filterExtensionList(reply: Buffer, le: boolean): Buffer {
  const count = reply[1] ?? 0;
  const names: Buffer[] = [];
  let off = 32;
  for (let i = 0; i < count && off < reply.length; i++) {
    const len = reply[off]!;
    const name = reply.toString('latin1', off + 1, off + 1 + len);
    if (SUPPORTED_EXTENSIONS.has(name)) names.push(reply.subarray(off, off + 1 + len));
    off += 1 + len;
  }
  const body = Buffer.concat(names);
  const padded = (body.length + 3) & ~3;
  const out = Buffer.alloc(32 + padded);
  reply.copy(out, 0, 0, 32);
  out[1] = names.length;
  write32(out, 4, padded / 4, le);
  body.copy(out, 32);
  return out;
}
