import type { Socket } from 'node:net';
import { ApplicationSession, type SessionStats, type Upstream } from './session.js';
import type { FocusTrigger } from './trigger.js';

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
}

/**
 * A conference: a fixed set of participants' X servers, the first being the master. Each application
 * that connects gets an ApplicationSession with its own input focus (initially the master). If the
 * master leaves, the conference closes and every application's connection is closed.
 */
export class Conference {
  private readonly sessions = new Set<ApplicationSession>();
  private nextId = 1;
  private closedReason: string | null = null;
  /** Counts summed over every application that has connected (open and closed). */
  private readonly finished: SessionStats = {
    requests: 0,
    forwardedReplies: 0,
    forwardedEvents: 0,
    forwardedErrors: 0,
    droppedEvents: 0,
    droppedErrors: 0,
    droppedReplies: 0,
  };

  constructor(private readonly opts: ConferenceOptions) {
    if (opts.participants.length === 0) throw new Error('a conference needs at least a master');
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

  /** Adopts an application's connection (a socket accepted on the conference's display). */
  addApplication(app: Socket): ApplicationSession | null {
    if (this.closedReason !== null) {
      app.destroy();
      return null;
    }
    const session = new ApplicationSession({
      id: this.nextId++,
      app,
      upstreams: this.opts.participants,
      trigger: this.opts.trigger,
      log: this.opts.log,
      setupTimeoutMs: this.opts.setupTimeoutMs,
      onClose: (s) => {
        this.sessions.delete(s);
        for (const k of Object.keys(this.finished) as Array<keyof SessionStats>) this.finished[k] += s.stats[k];
      },
      onFocusChange: (s, name) => this.opts.onFocusChange?.(s.id, name),
      onMasterLost: () => this.close('the master left the conference'),
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

  /** Makes `participant` the input focus of every open application (a control action). */
  setFocus(participant: string): number {
    let n = 0;
    for (const s of this.sessions) if (s.setFocus(participant)) n++;
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
