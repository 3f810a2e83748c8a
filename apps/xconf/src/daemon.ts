import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseFocusTrigger, type Conference, type FocusTrigger } from '@tandem/xconference';
import { AccessPolicy } from './access.js';
import { configFromFlags, localDisplayNumber, type ConferenceConfig, type ParticipantConfig, type XconfConfig } from './config.js';
import { CtlError, type ConferenceInfo, type CtlRequest } from './ctl-protocol.js';
import { defaultCtlSocket, prepareCtlDirectory, startCtlServer, type CtlServer } from './ctl-server.js';
import { parseDisplay, unixSocketPath, upstreamFor } from './display.js';
import { HostedConference, type HostedParticipant } from './hosted-conference.js';
import { conferenceStatus, XconfTotals, xconfVersion, type XconfStatus } from './status.js';

/** Options of XconfServer: log and warning lines, the ctl socket path, and tuning passed to each conference. */
export interface DaemonOptions {
  /** Receives the daemon's log lines (default: none). */
  readonly log?: (line: string) => void;
  /**
   * Security warnings (a conference that admits applications without a cookie). Default: `log`, else
   * stderr — the command line passes its own so that `--quiet` does not hide them.
   */
  readonly warn?: (line: string) => void;
  /** The ctl socket path; overrides the configuration. `null`: no ctl socket. */
  readonly ctlSocket?: string | null;
  /** A ctl socket that cannot be opened is logged and skipped instead of failing the start. */
  readonly ctlOptional?: boolean;
  /** A declared conference that cannot start is logged (and can be started later with ctl) instead of failing the start. */
  readonly keepGoing?: boolean;
  /** Called when a conference closes (its master left, or it was stopped). */
  readonly onConferenceClosed?: (name: string, reason: string) => void;
  /** Busy-poll budget after each write, µs (ConferenceOptions.busyPollMicros; default 50, 0 = off). */
  readonly busyPollMicros?: number;
  /** How long a new application waits for each participant's setup reply; a participant that does not
   * answer in time is left out of that application only (ConferenceOptions.setupTimeoutMs; default 10 s). */
  readonly setupTimeoutMs?: number;
}

interface Launched {
  readonly pid: number;
  readonly argv: readonly string[];
  readonly by: string;
}

/**
 * tandem-xconf's daemon: several conferences, each on its own X display with its own participants and
 * focus trigger; access checked against the configuration's allow-list and tokens; a ctl socket.
 */
export class XconfServer {
  readonly conferences = new Map<string, HostedConference>();
  readonly policy: AccessPolicy;
  /** The ctl socket's path, or null when there is none. */
  ctlPath: string | null = null;
  /** Counts over every conference run so far, for `ctl status` and the metrics. */
  readonly totals = new XconfTotals();
  /** The metrics endpoint's URL, shown by `ctl status` (set by whoever serves it; see startXconfMetrics). */
  metricsUrl: string | null = null;
  private readonly startedAt = performance.now();
  private ctl: CtlServer | null = null;
  private readonly launched = new Map<string, Set<Launched>>();
  private readonly log: (line: string) => void;
  private readonly warn: (line: string) => void;
  /** Where the conferences' Xauthority files live (the ctl socket's 0700 directory). */
  private readonly stateDir: string;
  private closing = false;
  /** Conference names and display numbers of starts in progress (two concurrent starts must not collide). */
  private readonly starting = new Set<string>();
  private readonly startingDisplays = new Set<number>();

  private constructor(
    readonly config: XconfConfig,
    private readonly opts: DaemonOptions,
  ) {
    this.policy = new AccessPolicy(config);
    this.log = opts.log ?? (() => {});
    this.warn = opts.warn ?? opts.log ?? ((line) => console.warn(line));
    const socket =
      opts.ctlSocket === undefined
        ? (config.control.socket ?? defaultCtlSocket())
        : (opts.ctlSocket ?? config.control.socket ?? defaultCtlSocket());
    this.stateDir = dirname(socket);
    this.ctlPath = opts.ctlSocket === null || !config.control.enabled ? null : socket;
  }

  /** Starts the ctl socket and every conference declared with `autostart`. */
  static async start(config: XconfConfig, opts: DaemonOptions = {}): Promise<XconfServer> {
    const d = new XconfServer(config, opts);
    if (d.ctlPath) {
      try {
        d.ctl = await startCtlServer(d.ctlPath, (req) => d.handle(req), d.log);
        d.log(`tandem-xconf: control socket ${d.ctlPath}`);
      } catch (err) {
        if (!opts.ctlOptional) throw err;
        d.log(`tandem-xconf: no control socket: ${(err as Error).message}`);
        d.ctlPath = null;
      }
    }
    for (const c of config.conferences) {
      if (!c.autostart) continue;
      try {
        await d.startDeclared(c);
      } catch (err) {
        if (opts.keepGoing) {
          d.log(`tandem-xconf: ${(err as Error).message} (start it later with \`tandem-xconf ctl start ${c.name} --master ${c.master}\`)`);
          continue;
        }
        await d.close('start failed');
        throw err;
      }
    }
    return d;
  }

  /** Handles one control request (also usable in-process). Throws CtlError. */
  async handle(req: CtlRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'list':
        return { conferences: [...this.conferences.values()].map((h) => this.describe(h)) };
      case 'status':
        return this.status(req.conference);
      case 'start':
        return this.startRequested(req);
      case 'join':
        return this.join(req);
      case 'leave':
        return this.leave(req);
      case 'focus':
        return this.focus(req);
      case 'launch':
        return this.launch(req);
      case 'drop':
        return this.drop(req);
      case 'stop': {
        const h = this.running(req.conference);
        this.policy.requireControl(this.policy.participant(h.master.name), undefined, req.token, `stop conference "${h.name}"`);
        const reason = await h.close(`stopped by ctl`);
        return { stopped: h.name, reason };
      }
    }
  }

  /** A conference as `ctl list` shows it, with the applications launched through ctl. */
  describe(h: HostedConference): ConferenceInfo & { launched: ReadonlyArray<{ pid: number; argv: readonly string[]; by: string }> } {
    return {
      name: h.name,
      display: h.display,
      master: h.master.name,
      participants: h.participants.map((p) => ({ name: p.name, display: p.display })),
      focusTrigger: h.trigger.label,
      requireCookie: h.xauthorityPath !== null,
      xauthority: h.xauthorityPath,
      applications: h.conference.applications.map((a) => ({ id: a.id, focus: a.focusName, participants: a.participants })),
      launched: [...(this.launched.get(h.name) ?? [])],
    };
  }

  /** The daemon and its running conferences (or only `conference`; not-found if it is not running): `ctl status`. */
  status(conference?: string): XconfStatus {
    const hosts = conference === undefined ? [...this.conferences.values()] : [this.running(conference)];
    return {
      pid: process.pid,
      version: xconfVersion(),
      uptimeSeconds: Math.round((performance.now() - this.startedAt) / 1000),
      metrics: this.metricsUrl,
      conferences: hosts.filter((h) => !h.isClosed).map(conferenceStatus),
    };
  }

  /** Stops every conference and the ctl socket. */
  async close(reason = 'daemon stopped'): Promise<void> {
    this.closing = true;
    await Promise.all([...this.conferences.values()].map((h) => h.close(reason)));
    await this.ctl?.close();
    this.ctl = null;
  }

  // ---- requests ------------------------------------------------------------------------------------

  private running(name: string): HostedConference {
    const h = this.conferences.get(name);
    if (!h || h.isClosed) throw new CtlError('not-found', `no conference "${name}" is running`);
    return h;
  }

  private async startRequested(req: Extract<CtlRequest, { cmd: 'start' }>): Promise<unknown> {
    if (this.conferences.has(req.conference)) throw new CtlError('conflict', `conference "${req.conference}" is already running`);
    const declared = this.config.conferences.find((c) => c.name === req.conference);
    const master = this.policy.participant(req.master);
    this.policy.require(master, 'start', req.token);
    if (declared) {
      if (declared.master !== master.name)
        throw new CtlError(
          'unauthorised',
          `conference "${declared.name}" is declared with master "${declared.master}", not "${master.name}"`,
        );
      if (req.display && parseDisplay(req.display).number !== parseDisplay(declared.display).number) {
        throw new CtlError('conflict', `conference "${declared.name}" is declared on display ${declared.display}`);
      }
      const h = await this.startDeclared(declared);
      return this.describe(h);
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(req.conference))
      throw new CtlError('bad-request', `bad conference name "${req.conference}"`);
    const range = this.config.runtimeDisplays;
    if (!range)
      throw new CtlError(
        'unauthorised',
        `conference "${req.conference}" is not declared and the configuration allows no runtime conferences (runtimeDisplays)`,
      );
    let display: number;
    if (req.display) {
      let d;
      try {
        d = parseDisplay(req.display);
      } catch (err) {
        throw new CtlError('bad-request', (err as Error).message);
      }
      if (d.host !== null || d.number < range.from || d.number > range.to)
        throw new CtlError('unauthorised', `display ${req.display} is outside runtimeDisplays :${range.from}..:${range.to}`);
      display = d.number;
    } else {
      const used = new Set([...[...this.conferences.values()].map((h) => h.displayNumber), ...this.startingDisplays]);
      const free = [];
      for (let n = range.from; n <= range.to; n++)
        if (!used.has(n) && !existsSync(unixSocketPath(n)) && !existsSync(`/tmp/.X${n}-lock`)) free.push(n);
      if (free.length === 0) throw new CtlError('conflict', `no free display in runtimeDisplays :${range.from}..:${range.to}`);
      display = free[0]!;
    }
    let trigger: FocusTrigger;
    try {
      trigger = parseFocusTrigger(req.focusTrigger ?? this.config.runtime.focusTrigger);
    } catch (err) {
      throw new CtlError('bad-request', (err as Error).message);
    }
    const h = await this.host(
      {
        name: req.conference,
        display: `:${display}`,
        master: master.name,
        participants: [],
        focusTrigger: trigger.label,
        tcp: this.config.runtime.tcp,
        requireCookie: this.config.runtime.requireCookie,
        autostart: false,
      },
      trigger,
    );
    return this.describe(h);
  }

  private async startDeclared(c: ConferenceConfig): Promise<HostedConference> {
    if (this.conferences.has(c.name)) throw new CtlError('conflict', `conference "${c.name}" is already running`);
    return this.host(c, parseFocusTrigger(c.focusTrigger));
  }

  private async host(c: ConferenceConfig, trigger: FocusTrigger): Promise<HostedConference> {
    const n = parseDisplay(c.display).number;
    if (this.conferences.has(c.name) || this.starting.has(c.name))
      throw new CtlError('conflict', `conference "${c.name}" is already running`);
    if (this.startingDisplays.has(n) || [...this.conferences.values()].some((h) => h.displayNumber === n))
      throw new CtlError('conflict', `display :${n} is already served by this daemon`);
    for (const name of [c.master, ...c.participants]) this.refuseLoop(this.policy.participant(name), n);
    if (c.requireCookie) prepareCtlDirectory(this.stateDir);
    this.starting.add(c.name);
    this.startingDisplays.add(n);
    let h: HostedConference;
    try {
      h = await HostedConference.start({
        name: c.name,
        display: c.display,
        master: this.hosted(this.policy.participant(c.master)),
        participants: c.participants.map((p) => this.hosted(this.policy.participant(p))),
        trigger,
        tcp: c.tcp,
        // Named after the display too: two daemons of one user (a second command-line daemon, or one with
        // another ctl socket in the same directory) may both have a conference of this name.
        xauthorityPath: c.requireCookie ? join(this.stateDir, `${c.name}-${n}.xauth`) : null,
        allow: c.allow,
        log: this.log,
        warn: this.warn,
        busyPollMicros: this.opts.busyPollMicros,
        setupTimeoutMs: this.opts.setupTimeoutMs,
        onLateJoin: (info) => this.totals.lateJoin(c.name, info),
      });
    } catch (err) {
      if (err instanceof CtlError) throw err;
      throw new CtlError('failed', `conference "${c.name}" could not start: ${(err as Error).message}`);
    } finally {
      this.starting.delete(c.name);
      this.startingDisplays.delete(n);
    }
    this.conferences.set(c.name, h);
    void h.closed.then((reason) => {
      if (this.conferences.get(c.name) === h) this.conferences.delete(c.name);
      this.totals.retire(h); // in the same tick: its counts move from running to closed, never counted twice
      this.launched.delete(c.name);
      this.log(`[${c.name}] closed: ${reason}`);
      if (!this.closing) this.opts.onConferenceClosed?.(c.name, reason);
    });
    return h;
  }

  /** A participant on one of the daemon's own displays would make it connect to itself, endlessly. */
  private refuseLoop(p: ParticipantConfig, alsoDisplay?: number): void {
    const n = localDisplayNumber(p.display);
    if (n === null) return;
    const own = new Set([...[...this.conferences.values()].map((h) => h.displayNumber), ...this.startingDisplays]);
    if (alsoDisplay !== undefined) own.add(alsoDisplay);
    if (own.has(n))
      throw new CtlError('conflict', `participant "${p.name}" is on :${n}, a display this daemon serves (it would connect to itself)`);
  }

  private hosted(p: ParticipantConfig): HostedParticipant {
    const up = upstreamFor(p.display, p.xauthority ?? process.env.XAUTHORITY);
    return { name: p.name, display: p.display, upstream: { ...up, name: p.name } };
  }

  private async join(req: Extract<CtlRequest, { cmd: 'join' }>): Promise<unknown> {
    const h = this.running(req.conference);
    const p = this.policy.participant(req.participant);
    this.policy.requireJoin(p, h.allow, h.name, req.token);
    if (h.has(p.name)) throw new CtlError('conflict', `participant "${p.name}" is already in conference "${h.name}"`);
    this.refuseLoop(p);
    try {
      await h.join(this.hosted(p));
    } catch (err) {
      throw new CtlError('failed', `participant "${p.name}" could not join: ${(err as Error).message}`);
    }
    return this.describe(h);
  }

  private async leave(req: Extract<CtlRequest, { cmd: 'leave' }>): Promise<unknown> {
    const h = this.running(req.conference);
    const p = this.policy.participant(req.participant);
    this.policy.requireControl(this.policy.participant(h.master.name), p, req.token, `remove "${p.name}" from conference "${h.name}"`);
    if (!h.has(p.name)) throw new CtlError('not-found', `participant "${p.name}" is not in conference "${h.name}"`);
    const isMaster = p.name === h.master.name;
    h.leave(p.name);
    this.log(`[${h.name}] ${p.name} left${isMaster ? ' (the master: the conference closes)' : ''}`);
    if (isMaster) return { left: p.name, conferenceClosed: await h.closed };
    return this.describe(h);
  }

  private async focus(req: Extract<CtlRequest, { cmd: 'focus' }>): Promise<unknown> {
    const h = this.running(req.conference);
    const p = this.policy.participant(req.participant);
    this.policy.requireControl(this.policy.participant(h.master.name), p, req.token, `give the input focus to "${p.name}"`);
    if (!h.has(p.name)) throw new CtlError('not-found', `participant "${p.name}" is not in conference "${h.name}"`);
    if (req.app !== undefined && !h.conference.applications.some((a) => a.id === req.app)) {
      throw new CtlError('not-found', `no application ${req.app} in conference "${h.name}"`);
    }
    const changed = h.conference.setFocus(p.name, req.app);
    return { focus: p.name, applications: changed };
  }

  /** Drops one application from the conference: its connection is closed, on every participant's display. */
  private async drop(req: Extract<CtlRequest, { cmd: 'drop' }>): Promise<unknown> {
    const h = this.running(req.conference);
    const by = this.policy.byToken(req.token);
    // The master, or a participant of the conference who may launch applications into it.
    const launcher = by?.may.includes('launch') && h.has(by.name) ? by : undefined;
    this.policy.requireControl(
      this.policy.participant(h.master.name),
      launcher,
      req.token,
      `drop an application from conference "${h.name}"`,
    );
    const app = h.conference.applications.find((a) => a.id === req.app);
    if (!app) throw new CtlError('not-found', `no application ${req.app} in conference "${h.name}"`);
    app.close(`dropped from the conference by ctl`);
    this.log(`[${h.name}] application ${req.app} dropped`);
    return this.describe(h);
  }

  private async launch(req: Extract<CtlRequest, { cmd: 'launch' }>): Promise<unknown> {
    const h = this.running(req.conference);
    let actor: ParticipantConfig | undefined;
    if (req.as !== undefined) actor = this.policy.participant(req.as);
    else if (req.token !== undefined) {
      actor = this.policy.byToken(req.token);
      if (!actor) throw new CtlError('unauthorised', 'wrong token: it belongs to no participant');
    } else actor = this.policy.participant(h.master.name);
    this.policy.require(actor, 'launch', req.token);
    if (!h.has(actor.name)) throw new CtlError('unauthorised', `participant "${actor.name}" is not in conference "${h.name}"`);
    const env: NodeJS.ProcessEnv = { ...process.env, DISPLAY: h.display };
    if (h.xauthorityPath) env.XAUTHORITY = h.xauthorityPath;
    const [cmd, ...args] = req.argv;
    const child = spawn(cmd!, args, { env, stdio: 'ignore', detached: true });
    const pid = await new Promise<number>((res, rej) => {
      child.once('spawn', () => res(child.pid!));
      child.once('error', (err) => rej(new CtlError('failed', `cannot launch ${cmd}: ${err.message}`)));
    });
    child.unref();
    const entry: Launched = { pid, argv: req.argv, by: actor.name };
    let set = this.launched.get(h.name);
    if (!set) this.launched.set(h.name, (set = new Set()));
    set.add(entry);
    child.once('exit', () => this.launched.get(h.name)?.delete(entry));
    this.log(`[${h.name}] ${actor.name} launched ${req.argv.join(' ')} (pid ${pid})`);
    return { pid, display: h.display, xauthority: h.xauthorityPath };
  }
}

// ---- the single conference of the command line ----------------------------------------------------

/** Options of startXconf: the display to serve, the participants' displays, the focus trigger, cookie and ctl settings. */
export interface XconfOptions {
  /** The display the daemon serves, e.g. ":95". */
  readonly display: string;
  /** The master's display (first participant). */
  readonly master: string;
  /** Other participants' displays. */
  readonly participants: readonly string[];
  readonly trigger: FocusTrigger;
  /** Also listen on TCP port 6000+n on 127.0.0.1. */
  readonly tcp?: boolean;
  /** Xauthority file with the servers' cookies (default: $XAUTHORITY). */
  readonly xauthority?: string;
  /**
   * Applications must present the conference's cookie (default true). The cookie is written to an
   * Xauthority file (`XconfDaemon.xauthorityPath`) in the ctl socket's directory. `false` admits every
   * application that can connect, and prints a warning.
   */
  readonly requireCookie?: boolean;
  /** A ctl socket for this daemon (default: none; the cookie file still goes in the default ctl socket's directory). */
  readonly ctlSocket?: string;
  /** Receives the daemon's log lines (default: none). */
  readonly log?: (line: string) => void;
  /** Security warnings (default: `log`, else stderr). */
  readonly warn?: (line: string) => void;
  /** Busy-poll budget after each write, µs (default 50, 0 = off; see ConferenceOptions.busyPollMicros). */
  readonly busyPollMicros?: number;
  /** A new application's wait for each participant's setup reply (default 10 s; see ConferenceOptions.setupTimeoutMs). */
  readonly setupTimeoutMs?: number;
}

/** A running single-conference tandem-xconf: its conference, socket, cookie file and server. */
export interface XconfDaemon {
  readonly conference: Conference;
  readonly socketPath: string;
  /**
   * The Xauthority file with the conference's cookie (mode 0600): run applications with
   * `XAUTHORITY=<this> DISPLAY=<display>`. Null when the conference admits applications without a cookie.
   */
  readonly xauthorityPath: string | null;
  /** The whole daemon (ctl, access policy). */
  readonly server: XconfServer;
  /** Resolves when the conference closes (the master left, or close() was called). */
  readonly closed: Promise<string>;
  /** Close the conference and the daemon. */
  close(reason?: string): Promise<void>;
}

/** Starts tandem-xconf with one conference: listens as an X display and connects each application to all participants. */
export async function startXconf(opts: XconfOptions): Promise<XconfDaemon> {
  const config = configFromFlags({
    display: opts.display,
    master: opts.master,
    participants: opts.participants,
    trigger: opts.trigger.label,
    tcp: opts.tcp,
    requireCookie: opts.requireCookie,
    xauthority: opts.xauthority,
  });
  const server = await XconfServer.start(config, {
    log: opts.log,
    warn: opts.warn,
    ctlSocket: opts.ctlSocket ?? null,
    busyPollMicros: opts.busyPollMicros,
    setupTimeoutMs: opts.setupTimeoutMs,
  });
  const hosted = server.conferences.get('default')!;
  const closed = hosted.closed.then(async (reason) => {
    await server.close(reason);
    return reason;
  });
  return {
    conference: hosted.conference,
    socketPath: hosted.socketPath,
    xauthorityPath: hosted.xauthorityPath,
    server,
    closed,
    async close(reason = 'daemon stopped') {
      await hosted.close(reason);
      await closed;
    },
  };
}
