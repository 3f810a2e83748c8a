import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { findCookie, readXauthority, type Upstream } from '@tandem/xconference';

/** A parsed X display name: `:N`, `N`, `unix:N`, `host:N` (TCP 6000+N); a screen suffix `.S` is ignored. */
export interface DisplayName {
  readonly host: string | null;
  readonly number: number;
  readonly text: string;
}

/** Parse an X display name; throws for anything but `:N`, `N`, `unix:N` or `host:N` (with an optional `.S`). */
export function parseDisplay(text: string): DisplayName {
  const m = /^(?:([^:]*):)?(\d+)(?:\.\d+)?$/.exec(text.trim());
  if (!m) throw new Error(`bad display name "${text}" (expected :N or host:N)`);
  const host = m[1] && m[1] !== 'unix' ? m[1] : null;
  return { host, number: Number(m[2]), text };
}

/** The Unix socket of local display `:n`. */
export const unixSocketPath = (n: number): string => `/tmp/.X11-unix/X${n}`;

/** How the daemon reaches a participant's server, with its cookie from XAUTHORITY if there is one. */
export function upstreamFor(text: string, xauthority = process.env.XAUTHORITY): Upstream {
  const d = parseDisplay(text);
  const auth = findCookie(readXauthority(xauthority), d.number, hostname());
  return {
    name: d.text,
    auth,
    connect: (): Socket => (d.host ? connect(6000 + d.number, d.host) : connect(unixSocketPath(d.number))),
  };
}
