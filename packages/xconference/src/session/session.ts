import type { Socket } from 'node:net';
import { JoinError, XProtocolError } from '../errors.js';
import { isBigReqEnable, withServerOpcode } from '../extensions/big-requests.js';
import { ExtensionTable, filterExtensionList } from '../extensions/supported.js';
import { EventCode, Opcode, REQUESTS } from '../generated/xproto.js';
import { LateJoin, type JoinStats } from '../late-join/late-join.js';
import { RefusedCreates } from '../late-join/refused-creates.js';
import { ResourceTracker, TRACKED_OPCODES } from '../late-join/resource-tracker.js';
import { AtomTable } from '../translate/atom-table.js';
import { IdMap } from '../translate/id-map.js';
import { translateError, translateEvent, translateReply, translateRequest } from '../translate/translate.js';
import { unsupportedVisual } from '../translate/visual-policy.js';
import { read16, read32 } from '../wire/bytes.js';
import { EventCategory, RequestCategory, eventCategory, requestCategory } from '../wire/categories.js';
import { RequestFramer } from '../wire/framing.js';
import { encodeSetupFailed, type ClientSetup, type ServerSetup } from '../wire/setup.js';
import { isFocusTrigger, learnTriggerKeycode } from './focus-trigger.js';
import { ClientSetupReader, connectServer, connectUpstreams, type ConnectedServer, type UpstreamResult } from './handshake.js';
import {
  countDroppedEvent,
  countRequest,
  emptyParticipantCounters,
  emptyStats,
  type ParticipantCounters,
  type SessionOptions,
  type SessionStats,
  type Upstream,
} from './options.js';
import { PendingNames } from './pending-names.js';
import { ReplyOrder } from './reply-order.js';
import { answeredByFocus, eventPasses } from './routing.js';
import { INTERNAL, RESPONDER, ServerLink, setSequence } from './server-link.js';
import { readSocket } from './socket-reader.js';
import { SocketWriter } from './socket-writer.js';

/**
 * One application connected to the conference: its requests are classified and sent to the master,
 * the input focus or all servers; replies, errors and events come back filtered by category and role,
 * with sequence numbers, resource ids and atoms translated per server.
 */
export class ApplicationSession {
  readonly id: number;
  readonly stats: SessionStats = emptyStats();
  private readonly app: Socket;
  private readonly appWriter: SocketWriter;
  private readonly opts: SessionOptions;
  private le = true;
  private readonly setupReader = new ClientSetupReader();
  private clientSetup: ClientSetup | null = null;
  private early: Buffer[] = [];
  private framer: RequestFramer | null = null;
  private links: ServerLink[] = [];
  private live: ServerLink[] = [];
  private focus: ServerLink | null = null;
  private appSeq = 0;
  private lastDelivered = 0;
  private closed = false;
  /** Names of InternAtom / QueryExtension requests awaiting replies from several servers. */
  private readonly atomNames = new PendingNames();
  private readonly extensionNames = new PendingNames();
  private readonly atoms = new AtomTable();
  private readonly extensions = new ExtensionTable();
  private readonly onRequest = (req: Buffer): void => this.handleRequest(req);
  private readonly order = new ReplyOrder<ServerLink>(
    (msg, seq) => this.deliver(msg, seq),
    () => this.lastDelivered,
  );
  /** Copies of requests answered by a non-master server, to send again to the master if that server leaves. */
  private readonly resend = new Map<number, Buffer>();
  /** The application's live resources, replayed on a participant that joins later (null before setup). */
  tracker: ResourceTracker | null = null;
  private readonly refusedCreates = new RefusedCreates();
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

  /** True once the application's session has closed. */
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
    if (this.closed) throw new JoinError('closed', `application ${this.id} is closed`);
    if (!this.framer) await new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
    if (this.live.some((l) => l.name === up.name) || this.joins.some((j) => j.name === up.name)) {
      throw new JoinError('duplicate', `${up.name} is already a participant of application ${this.id}`);
    }
    const conn = await connectServer(up, this.le ? 'LE' : 'BE', this.opts.setupTimeoutMs ?? 10_000);
    if (this.closed) {
      conn.socket.destroy();
      throw new JoinError('closed', `application ${this.id} closed while ${up.name} was joining`);
    }
    const master = this.links[0]!;
    const index = this.nextLinkIndex++;
    const ids = new IdMap(master.setup, conn.setup);
    const counters = this.countersOf(up.name, conn.setup);
    const link = new ServerLink(index, up.name, conn.socket, conn.setup, ids, this.le, this.opts.busyPoll, counters);
    this.atoms.addServer(index);
    const join = new LateJoin(link, {
      le: this.le,
      master,
      tracker: this.tracker!,
      appSeq: () => this.appSeq,
      appAtoms: () => this.atoms.appAtoms,
      learnAtom: (name, atom) => this.atoms.learnOnServer(link, name, atom),
      bigRequestsOpcode: () => this.extensions.appBigRequestsOpcode,
      log: (line) => this.opts.log?.(`app ${this.id}: ${line}`),
    });
    this.links.push(link);
    this.joins.push(join);
    const gone = (): void => {
      join.fail('connection lost while joining');
      this.onServerGone(link);
    };
    this.attach(link, gone);
    this.opts.log?.(`app ${this.id}: ${up.name} is joining`);
    try {
      const ready = join.prepare(this.opts.joinTimeoutMs);
      learnTriggerKeycode(link, this.opts.trigger, this.appSeq, this.le);
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
    if (this.closed || link.closed) throw new JoinError('failed', `${up.name}: left while joining`);
    join.complete();
    this.lastJoin = join.stats;
    this.live.push(link);
    this.opts.log?.(`app ${this.id}: ${up.name} joined`);
  }

  /** Counts of the last completed late join (null if none). */
  lastJoin: JoinStats | null = null;

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
    if (TRACKED_OPCODES[opcode] !== 0) this.refusedCreates.observe(this.tracker!, req, opcode, appSeq, this.le);
    if (this.joins.length === 0 || (category !== RequestCategory.DrawOrChange && category !== RequestCategory.InitResourceIds)) return;
    if (opcode === Opcode.InternAtom) this.atomNames.addServers(appSeq, this.joins.length);
    else if (opcode === Opcode.QueryExtension) this.extensionNames.addServers(appSeq, this.joins.length);
    for (const j of this.joins) j.enqueue(req, opcode, appSeq);
  }

  /** Close the session: pending joins fail, the application's and the servers' connections are destroyed. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.log?.(`app ${this.id}: closed (${reason})`);
    for (const j of this.joins) j.fail(`application closed (${reason})`);
    for (const w of this.startWaiters.splice(0)) w.reject(new JoinError('closed', `application ${this.id} closed (${reason})`));
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
      const read = this.setupReader.push(chunk);
      if (!read) return;
      this.clientSetup = read.setup;
      this.le = read.setup.byteOrder === 'LE';
      if (read.rest.length) this.early.push(Buffer.from(read.rest));
      connectUpstreams(this.opts.upstreams, read.setup.byteOrder, this.opts.setupTimeoutMs ?? 10_000, (results, masterRefusal) => {
        if (this.closed) {
          for (const r of results) if (r && 'socket' in r) r.socket.destroy();
          return;
        }
        this.startSession(results, masterRefusal);
      });
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    const typed =
      err instanceof XProtocolError
        ? err
        : new XProtocolError('malformed-request', `malformed request: ${err instanceof Error ? err.message : String(err)}`);
    const msg = `${typed.name}(${typed.code}): ${typed.message}`;
    this.lastError = typed;
    this.opts.log?.(`app ${this.id}: ${msg}`);
    this.close(msg);
  }

  private startSession(results: UpstreamResult[], masterRefusal: Buffer | null): void {
    const master = results[0]!;
    // A master whose colours no participant could match (a colormapped default visual) hosts nothing.
    const masterError = 'error' in master ? master.error : unsupportedVisual(master.setup);
    if ('error' in master || masterError !== undefined) {
      for (const r of results) if (!('error' in r)) r.socket.destroy();
      const why = 'error' in master ? master.error : `the master cannot host a conference: ${masterError}`;
      this.app.write(('error' in master ? masterRefusal : null) ?? encodeSetupFailed(`tandem-xconf: ${why}`, this.le));
      this.opts.log?.(`app ${this.id}: ${why}`);
      this.app.end();
      this.close(why);
      return;
    }
    for (const [i, r] of results.entries()) {
      const up = this.opts.upstreams[i]!;
      // Left out of this application only when slow or stalled at this setup (a paused Xvfb, a busy
      // machine): it stays in the conference and in every running application (a server really gone is
      // noticed by their own connections). Refused from the conference when it would show wrong colours.
      const refused = 'error' in r || i === 0 ? undefined : unsupportedVisual(r.setup);
      if ('error' in r) this.opts.log?.(`app ${this.id}: participant ${up.name} left out of this application: ${r.error}`);
      else if (refused !== undefined) {
        r.socket.destroy();
        this.opts.log?.(`app ${this.id}: participant ${up.name} refused: ${refused}`);
        this.opts.onParticipantLost?.(this, up.name);
      } else {
        const ids = new IdMap(master.setup, r.setup);
        const counters = this.countersOf(up.name, r.setup);
        const link = new ServerLink(i, up.name, r.socket, r.setup, ids, this.le, this.opts.busyPoll, counters);
        this.links.push(link);
        this.atoms.addServer(i);
      }
    }
    this.live = [...this.links];
    this.focus = this.links[0]!;
    this.framer = new RequestFramer(this.le);
    const ms = master.setup;
    this.tracker = new ResourceTracker(this.le, ms.screens[0]?.root ?? 0, ms.resourceIdBase >>> 0, ms.resourceIdMask >>> 0, (line) =>
      this.opts.log?.(`app ${this.id}: ${line}`),
    );
    for (const w of this.startWaiters.splice(0)) w.resolve();
    for (const link of this.links) {
      this.attach(link, () => this.onServerGone(link));
      learnTriggerKeycode(link, this.opts.trigger, this.appSeq, this.le);
    }
    this.appWriter.write(master.raw);
    for (const link of this.links) {
      const r = results[link.index] as ConnectedServer;
      if (r.rest.length) this.onServerData(link, r.rest);
    }
    const early = this.early;
    this.early = [];
    for (const chunk of early) this.onAppData(chunk);
  }

  /** The participant's shared counters (the conference's, else this link's own), with its colour depth noted. */
  private countersOf(name: string, setup: ServerSetup): ParticipantCounters {
    const c = this.opts.participantCounters?.(name) ?? emptyParticipantCounters();
    c.depth = setup.screens[0]?.rootDepth ?? c.depth;
    return c;
  }

  /** Reads and handles `link`'s server; `gone` runs when its connection fails or closes. */
  private attach(link: ServerLink, gone: () => void): void {
    link.onMessage = (msg) => this.handleServerMessage(link, msg);
    // Flow control towards one server: while any server holds more than its writer's limit unsent (a slow
    // participant), the application's connection is not read, so the daemon's memory stays bounded and the
    // conference goes at the pace of its slowest member (all see the same application).
    link.writer.onBacklog = (backlogged) => {
      if (backlogged) this.stats.serverBacklogs++;
      this.updateAppReading();
    };
    readSocket(link.socket, (chunk) => this.onServerData(link, chunk));
    link.socket.on('error', gone);
    link.socket.on('close', gone);
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
    const enablesBigRequests = isBigReqEnable(opcode, this.extensions.appBigRequestsOpcode);
    const category = enablesBigRequests ? RequestCategory.InitResourceIds : requestCategory(opcode);
    countRequest(this.stats, category);
    if (opcode === Opcode.InternAtom) this.atomNames.expect(appSeq, req, this.le, this.live.length);
    else if (opcode === Opcode.QueryExtension) this.extensionNames.expect(appSeq, req, this.le, this.live.length);
    if (enablesBigRequests) this.framer!.bigRequests = true;
    if (TRACKED_OPCODES[opcode] !== 0 || this.joins.length !== 0) this.observe(req, opcode, appSeq, category);
    const master = this.links[0]!;
    const spec = REQUESTS[opcode];
    if (enablesBigRequests || spec?.hasReply) {
      const responder = answeredByFocus(category) ? this.focus! : master;
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
          if (enablesBigRequests) out = withServerOpcode(out, req, link.bigRequestsOpcode);
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
    link.counters.bytesIn += chunk.length;
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
      if (opcode === Opcode.InternAtom) {
        const name = this.atomNames.answered(appSeq);
        if (name !== undefined) this.atoms.learn(link, name, read32(msg, 8, le), this.links);
      } else if (opcode === Opcode.QueryExtension) {
        const name = this.extensionNames.answered(appSeq);
        if (name !== undefined) this.extensions.learn(link, name, msg);
      }
      if (!(flags & RESPONDER)) {
        this.stats.droppedReplies++;
        return;
      }
      let out = link.isMaster ? msg : translateReply(msg, opcode, link.ids, le);
      if (opcode === Opcode.ListExtensions) out = filterExtensionList(out, le);
      // ListFontsWithInfo sends several replies; the last one has an empty name.
      const final = opcode !== Opcode.ListFontsWithInfo || msg[1] === 0;
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
      if (link.isMaster) this.refusedCreates.masterError(this.tracker!, appSeq);
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
    let trigger = false;
    if (
      category === EventCategory.UserInteraction &&
      link !== this.focus &&
      isFocusTrigger(this.opts.trigger, link.triggerKeycode, msg, this.le)
    ) {
      this.changeFocus(link);
      trigger = true;
      // A button trigger is also input (the click lands); a key chord is reserved for switching.
      pass = this.opts.trigger.kind === 'button';
    } else pass = eventPasses(category, link === this.focus, link.isMaster);
    if (!pass) {
      countDroppedEvent(this.stats, category, trigger);
      return;
    }
    const out = link.isMaster ? msg : translateEvent(msg, link.ids, this.le);
    this.stats.forwardedEvents++;
    if ((msg[0]! & 0x7f) === EventCode.KeymapNotify) {
      // KeymapNotify carries no sequence number.
      this.appWriter.write(out);
      return;
    }
    // Events never move the application's sequence backwards; only the master's advance it.
    this.order.offer(out, link.isMaster ? link.appSeqOf[seq]! : this.lastDelivered, false, false);
  }

  private deliver(msg: Buffer, appSeq: number): void {
    if (appSeq > this.lastDelivered) this.lastDelivered = appSeq;
    setSequence(msg, appSeq, this.le);
    this.appWriter.write(msg);
  }
}
