import type { Socket } from 'node:net';
import { isXconferenceError, JoinError } from './errors.js';
import { BusyPoll, DEFAULT_BUSY_POLL_MICROS } from './session/busy-poll.js';
import type { FocusTrigger } from './session/focus-trigger.js';
import { connectServer } from './session/handshake.js';
import { emptyParticipantCounters, emptyStats, type ParticipantCounters, type SessionStats, type Upstream } from './session/options.js';
import { ApplicationSession } from './session/session.js';
import { unsupportedVisual } from './translate/visual-policy.js';

/** Options of a Conference: the participants' servers (first = master), the focus trigger, timeouts and callbacks. */
export interface ConferenceOptions {
  /** Participants' servers; the first is the master (irrevocable). */
  readonly participants: readonly Upstream[];
  readonly trigger: FocusTrigger;
  /** Receives the conference's log lines (default: none). */
  readonly log?: (line: string) => void;
  /** Called once when the conference closes (the master left, or close() was called). */
  readonly onClose?: (reason: string) => void;
  /** Called when an application's focus moves to another participant. */
  readonly onFocusChange?: (applicationId: number, participant: string) => void;
  /** Milliseconds to wait for each server's setup reply before leaving it out (default 10 s). */
  readonly setupTimeoutMs?: number;
  /** Milliseconds a late join may wait for the servers' answers before it fails (default 30 s). */
  readonly joinTimeoutMs?: number;
  /**
   * Microseconds the daemon keeps polling its sockets without sleeping after each write (default 50; 0 =
   * off). Saves the two process wake-ups a relay adds to every round trip, for at most this much CPU per
   * burst of writes; see BusyPoll and docs/XCONFERENCE.md.
   */
  readonly busyPollMicros?: number;
  /** Called after each participant's successful late join (see LateJoinInfo); for metrics such as a replay-time histogram. */
  readonly onLateJoin?: (info: LateJoinInfo) => void;
}

/** One participant's completed late join, as reported to ConferenceOptions.onLateJoin. */
export interface LateJoinInfo {
  /** The participant that joined. */
  readonly participant: string;
  /** Seconds from the join request to the newcomer showing every running application (probe, replays, queued requests). */
  readonly seconds: number;
  /** Applications that were running and replayed on the newcomer. */
  readonly applications: number;
}

/** Conference-wide counts (they only grow; plain numbers, read at any time). */
export interface ConferenceCounters {
  /** Input-focus changes of any application: trigger, ctl, or the focus falling back to the master when a participant left. */
  focusChanges: number;
  /** Participants that joined the running conference (Conference.addParticipant succeeded). */
  lateJoins: number;
  /** Late joins that failed (unreachable or refused server, a replay that failed); duplicates and joins to a closed conference not counted. */
  lateJoinFailures: number;
  /** Seconds spent in the successful late joins, summed (see LateJoinInfo.seconds). */
  lateJoinSeconds: number;
}

/**
 * A conference: participants' X servers, the first being the master (irrevocable). Each application that
 * connects gets an ApplicationSession with its own input focus (initially the master). Participants join
 * (late joiners get every running application recreated) and leave at any time; if the master leaves, the
 * conference closes and every application's connection is closed.
 */
export class Conference {
  private readonly sessions = new Set<ApplicationSession>();
  /** Current participants, master first; applications that connect are connected to all of them. */
  private readonly participants: Upstream[];
  private nextId = 1;
  private closedReason: string | null = null;
  /** Counts summed over every application that has connected (open and closed). */
  private readonly finished: SessionStats = emptyStats();
  /** Per-participant counters, shared by every application's connection to that participant; kept after it leaves. */
  private readonly perParticipant = new Map<string, ParticipantCounters>();
  /** Conference-wide counts: focus changes, late joins. */
  readonly counters: ConferenceCounters = { focusChanges: 0, lateJoins: 0, lateJoinFailures: 0, lateJoinSeconds: 0 };

  constructor(private readonly opts: ConferenceOptions) {
    if (opts.participants.length === 0) throw new Error('a conference needs at least a master');
    this.participants = [...opts.participants];
    this.busyPoll = new BusyPoll(opts.busyPollMicros ?? DEFAULT_BUSY_POLL_MICROS);
  }

  /** Shared by the conference's sessions: one poll per conference, re-armed by every write. */
  private readonly busyPoll: BusyPoll;

  /** Names of the current participants, master first. */
  get participantNames(): string[] {
    return this.participants.map((p) => p.name);
  }

  /**
   * A participant joins: every open application is recreated on its server (see LateJoin) and applications
   * that connect later include it. Rejects with a JoinError if the name is already a participant, the
   * conference is closed, the server cannot be reached or a join fails; then nothing else is disturbed.
   */
  async addParticipant(up: Upstream): Promise<void> {
    if (this.closedReason !== null) throw new JoinError('closed', `the conference is closed (${this.closedReason})`);
    if (this.participants.some((p) => p.name === up.name)) throw new JoinError('duplicate', `${up.name} is already a participant`);
    const started = performance.now();
    let applications: number;
    try {
      applications = await this.join(up);
    } catch (err) {
      this.counters.lateJoinFailures++;
      throw err;
    }
    const seconds = (performance.now() - started) / 1000;
    this.counters.lateJoins++;
    this.counters.lateJoinSeconds += seconds;
    this.opts.onLateJoin?.({ participant: up.name, seconds, applications });
  }

  /** Counters of participant `name` (created at zero if it has none yet); the same object while the conference lives. */
  participantCounters(name: string): ParticipantCounters {
    let c = this.perParticipant.get(name);
    if (c === undefined) this.perParticipant.set(name, (c = emptyParticipantCounters()));
    return c;
  }

  /** Counters of every participant that has been connected to, including those that left. */
  get participantTraffic(): ReadonlyMap<string, Readonly<ParticipantCounters>> {
    return this.perParticipant;
  }

  /** addParticipant's work; resolves with the number of applications replayed on the newcomer. */
  private async join(up: Upstream): Promise<number> {
    const sessions = [...this.sessions].filter((s) => !s.isClosed);
    // Check that the server can be reached at all, and that it can show the master's colours.
    const probe = await connectServer(up, 'LE', this.opts.setupTimeoutMs ?? 10_000);
    probe.socket.destroy();
    const refusal = unsupportedVisual(probe.setup);
    if (refusal !== undefined) {
      this.opts.log?.(`participant ${up.name} refused: ${refusal}`);
      throw new JoinError('unsupported-visual', `${up.name} cannot join: ${refusal}`);
    }
    if (this.closedReason !== null) throw new JoinError('closed', `the conference is closed (${this.closedReason})`);
    if (this.participants.some((p) => p.name === up.name)) throw new JoinError('duplicate', `${up.name} is already a participant`);
    this.participantCounters(up.name).depth = probe.setup.screens[0]?.rootDepth ?? null;
    this.participants.push(up);
    this.opts.log?.(`participant ${up.name} joins (${sessions.length} running applications)`);
    const results = await Promise.allSettled(sessions.map((s) => s.addParticipant(up)));
    const failure = results.find((r, i): r is PromiseRejectedResult => r.status === 'rejected' && !sessions[i]!.isClosed);
    if (failure || this.closedReason !== null) {
      const at = this.participants.indexOf(up);
      if (at >= 0) this.participants.splice(at, 1); // (already gone if its server dropped during the join)
      for (const s of this.sessions) s.removeParticipant(up.name);
      const why = failure
        ? failure.reason instanceof Error
          ? failure.reason.message
          : String(failure.reason)
        : `the conference closed (${this.closedReason})`;
      this.opts.log?.(`participant ${up.name} could not join: ${why}`);
      const code = failure ? (isXconferenceError(failure.reason, 'JoinError') ? failure.reason.code : 'failed') : 'closed';
      throw new JoinError(code, `${up.name} could not join: ${why}`, failure ? { cause: failure.reason } : undefined);
    }
    this.opts.log?.(`participant ${up.name} joined`);
    return sessions.length;
  }

  /**
   * A participant leaves: its connections close and the input focus falls back to the master where it held
   * it; the others are undisturbed. Removing the master closes the conference. False if `name` is unknown.
   */
  removeParticipant(name: string): boolean {
    if (this.closedReason !== null) return false;
    if (name === this.master) {
      this.close(`the master ${name} left the conference`);
      return true;
    }
    const i = this.participants.findIndex((p) => p.name === name);
    if (i < 0) return false;
    this.participants.splice(i, 1);
    for (const s of this.sessions) s.removeParticipant(name);
    this.opts.log?.(`participant ${name} left`);
    return true;
  }

  /** The master participant's name (the first server; it cannot leave without ending the conference). */
  get master(): string {
    return this.opts.participants[0]!.name;
  }

  /** True once the conference has closed. */
  get isClosed(): boolean {
    return this.closedReason !== null;
  }

  /** The applications running in the conference. */
  get applications(): readonly ApplicationSession[] {
    return [...this.sessions];
  }

  /**
   * Adopts an application's connection (a socket accepted on the conference's display). `prelude`: bytes
   * already read from it (e.g. its connection setup, read to check a cookie); they are handled first.
   */
  addApplication(app: Socket, prelude?: Buffer): ApplicationSession | null {
    if (this.closedReason !== null) {
      app.destroy();
      return null;
    }
    const session = new ApplicationSession({
      id: this.nextId++,
      app,
      prelude,
      upstreams: [...this.participants],
      trigger: this.opts.trigger,
      log: this.opts.log,
      setupTimeoutMs: this.opts.setupTimeoutMs,
      joinTimeoutMs: this.opts.joinTimeoutMs,
      busyPoll: this.busyPoll,
      onClose: (s) => {
        this.sessions.delete(s);
        for (const k of Object.keys(this.finished) as Array<keyof SessionStats>) this.finished[k] += s.stats[k];
      },
      onFocusChange: (s, name) => {
        this.counters.focusChanges++;
        this.opts.onFocusChange?.(s.id, name);
      },
      participantCounters: (name) => this.participantCounters(name),
      onMasterLost: () => this.close('the master left the conference'),
      // A participant's server that is gone for one application is gone for the conference.
      onParticipantLost: (_s, name) => this.removeParticipant(name),
    });
    this.sessions.add(session);
    return session;
  }

  /** Counts over all applications so far (open ones included). */
  get totals(): SessionStats {
    const t = { ...this.finished };
    for (const s of this.sessions) for (const k of Object.keys(t) as Array<keyof SessionStats>) t[k] += s.stats[k];
    return t;
  }

  /** Makes `participant` the input focus of one application, or of every open one (a control action). Returns how many changed. */
  setFocus(participant: string, applicationId?: number): number {
    let n = 0;
    for (const s of this.sessions) {
      if (applicationId !== undefined && s.id !== applicationId) continue;
      if (s.focusName !== participant && s.setFocus(participant)) n++;
    }
    return n;
  }

  /** Closes the conference and every application's connection. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    this.opts.log?.(`conference closed: ${reason}`);
    for (const s of [...this.sessions]) s.close(reason);
    this.opts.onClose?.(reason);
  }
}
