// Who may do what: the allow-list (participants and their permissions in the configuration) and tokens.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ParticipantConfig, Permission, XconfConfig } from './config.js';
import { CtlError } from './ctl-protocol.js';

/** Constant-time comparison of a presented token with the configured one (both hashed to equal length). */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** True when `token` proves the request acts for `p`: p has no token (allow-list only) or the token is p's. */
export function actsFor(p: ParticipantConfig, token: string | undefined): boolean {
  return p.token === undefined || tokenMatches(token, p.token);
}

/** Access checks of the configuration: who may start, join and launch in which conference, and with which token. */
export class AccessPolicy {
  private readonly byName = new Map<string, ParticipantConfig>();

  constructor(private readonly config: XconfConfig) {
    for (const p of config.participants) this.byName.set(p.name, p);
  }

  /** A configured participant by name or by display; throws not-found (unlisted participants are refused). */
  participant(nameOrDisplay: string): ParticipantConfig {
    const p = this.byName.get(nameOrDisplay) ?? this.config.participants.find((x) => x.display === nameOrDisplay);
    if (!p) throw new CtlError('unauthorised', `"${nameOrDisplay}" is not on the participants' allow-list`);
    return p;
  }

  /** The participant a token belongs to, if any. */
  byToken(token: string | undefined): ParticipantConfig | undefined {
    if (token === undefined) return undefined;
    return this.config.participants.find((p) => p.token !== undefined && tokenMatches(token, p.token));
  }

  /** Checks that `p` has `permission` and that the request proves it acts for `p`. */
  require(p: ParticipantConfig, permission: Permission, token: string | undefined): void {
    if (!p.may.includes(permission)) throw new CtlError('unauthorised', `participant "${p.name}" may not ${permission}`);
    if (!actsFor(p, token))
      throw new CtlError('unauthorised', `${token === undefined ? 'a token is required' : 'wrong token'} for participant "${p.name}"`);
  }

  /** Checks that `p` may join a conference whose allow-list (if any) is `allow`. */
  requireJoin(p: ParticipantConfig, allow: readonly string[] | undefined, conference: string, token: string | undefined): void {
    this.require(p, 'join', token);
    if (allow && !allow.includes(p.name))
      throw new CtlError('unauthorised', `participant "${p.name}" is not allowed to join conference "${conference}"`);
  }

  /**
   * A control action on a running conference (leave, focus, stop): allowed with the master's credentials
   * (the master controls the conference) or, when `self` is given, with that participant's own.
   */
  requireControl(master: ParticipantConfig, self: ParticipantConfig | undefined, token: string | undefined, what: string): void {
    if (actsFor(master, token)) return;
    if (self && actsFor(self, token)) return;
    throw new CtlError(
      'unauthorised',
      `${token === undefined ? 'a token is required' : 'wrong token'} to ${what} (the master's${self ? ` or ${self.name}'s` : ''})`,
    );
  }
}
