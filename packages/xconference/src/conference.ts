import type { Socket } from 'node:net';
import { isXconferenceError, JoinError } from './errors.js';
import { BusyPoll, DEFAULT_BUSY_POLL_MICROS } from './session/busy-poll.js';
import type { FocusTrigger } from './session/focus-trigger.js';
import { connectServer } from './session/handshake.js';
import { emptyStats, type SessionStats, type Upstream } from './session/options.js';
import { ApplicationSession } from './session/session.js';
import { unsupportedVisual } from './translate/visual-policy.js';

export interface ConferenceOptions {
  /** Participants' servers; the first is the master (irrevocable). */
  readonly participants: readonly Upstream[];
  readonly trigger: FocusTrigger;
  readonly log?: (line: string) => void;
  /** Called once when the conference closes (the master left, or close() was called). */
  readonly onClose?: (reason: string) => void;
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

  get master(): string {
    return this.opts.participants[0]!.name;
  }

  get isClosed(): boolean {
    return this.closedReason !== null;
  }

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
      onFocusChange: (s, name) => this.opts.onFocusChange?.(s.id, name),
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
