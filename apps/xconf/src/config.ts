// The daemon's configuration file (JSON), validated with zod. A single conference from the command line
// (`--display :N --master D --participant D…`) is the simple case of the same structure (configFromFlags).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseFocusTrigger } from '@tandem/xconference';
import { parseDisplay } from './display.js';

/** Thrown for a configuration that does not validate; `issues` name every bad field. */
export class ConfigError extends Error {
  static readonly NAME = 'ConfigError';
  override readonly name = 'ConfigError';
  constructor(readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }>) {
    super(`invalid tandem-xconf configuration:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
  }
}

const displayName = z.string().refine(
  (s) => {
    try {
      parseDisplay(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not an X display name (expected :N or host:N)' },
);
const localDisplay = displayName.refine((s) => parseDisplay(s).host === null, { message: 'the daemon listens on a local display :N' });
const focusTrigger = z.string().refine(
  (s) => {
    try {
      parseFocusTrigger(s);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a focus trigger (a key chord such as ctrl+alt+f, button, button1..button5, or none)' },
);
const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-" (1–64, not starting with a punctuation mark)');
/** Participant names may also be display names (`:92`, `host:3`), as on the command line. */
const participantName = z.string().regex(/^[A-Za-z0-9:][A-Za-z0-9:._-]{0,63}$/, 'letters, digits, ":", ".", "_" and "-" (1–64)');

/** What a participant may be allowed to do: start a conference, join one, launch applications. */
export const PERMISSIONS = ['start', 'join', 'launch'] as const;
/** One of PERMISSIONS. */
export type Permission = (typeof PERMISSIONS)[number];

const participantSchema = z.strictObject({
  /** How the participant is named in ctl commands, logs and `list`. */
  name: participantName,
  /** The participant's X server, `:N` or `host:N`. */
  display: displayName,
  /** Xauthority file holding the server's MIT-MAGIC-COOKIE-1 (default: the daemon's $XAUTHORITY). */
  xauthority: z.string().min(1).optional(),
  /** Secret a ctl request acting as this participant must present; without one the allow-list entry is enough. */
  token: z.string().min(8, 'at least 8 characters').optional(),
  /** What the participant may do: start a conference (as its master), join one, launch applications into one. */
  may: z.array(z.enum(PERMISSIONS)).default(['join']),
});

const conferenceSchema = z.strictObject({
  name,
  /** The X display the conference serves, `:N` (socket /tmp/.X11-unix/XN). */
  display: localDisplay,
  /** The participant (by name) that starts the conference and is its master. */
  master: participantName,
  /** Participants (by name) connected from the start. */
  participants: z.array(participantName).default([]),
  /** Who may join later (by name); default: every participant allowed to join. */
  allow: z.array(participantName).optional(),
  /** Focus-switch trigger: a key chord, a button click from a non-focus participant, or `none` (ctl only). */
  focusTrigger: focusTrigger.default('ctrl+alt+f'),
  /** Also listen on TCP 127.0.0.1:6000+N. */
  tcp: z.boolean().default(false),
  /** Applications must present the conference's MIT-MAGIC-COOKIE-1 (written to a 0600 Xauthority file). */
  requireCookie: z.boolean().default(true),
  /** Start it with the daemon (true), or wait for `ctl start` (false). */
  autostart: z.boolean().default(true),
});

/** The zod schema of tandem-xconf's JSON configuration: the ctl socket, the participants, the conferences. */
export const configSchema = z
  .strictObject({
    control: z
      .strictObject({
        /** The ctl socket (default $XDG_RUNTIME_DIR/tandem-xconf/ctl.sock or /tmp/tandem-xconf-$UID/ctl.sock). */
        socket: z.string().min(1).optional(),
        /** Set to false for no ctl socket at all. */
        enabled: z.boolean().default(true),
      })
      .default({ enabled: true }),
    participants: z.array(participantSchema).min(1, 'at least one participant'),
    conferences: z.array(conferenceSchema).default([]),
    /** Displays `ctl start` may use for conferences not declared here (inclusive range). */
    runtimeDisplays: z
      .strictObject({ from: z.number().int().min(0).max(65535), to: z.number().int().min(0).max(65535) })
      .refine((r) => r.from <= r.to, { message: 'from must not exceed to' })
      .optional(),
    /** Defaults for conferences started at run time. */
    runtime: z
      .strictObject({
        focusTrigger: focusTrigger.default('ctrl+alt+f'),
        requireCookie: z.boolean().default(true),
        tcp: z.boolean().default(false),
      })
      .default({ focusTrigger: 'ctrl+alt+f', requireCookie: true, tcp: false }),
  })
  .superRefine((c, ctx) => {
    const names = new Map<string, number>();
    const tokens = new Map<string, number>();
    c.participants.forEach((p, i) => {
      if (names.has(p.name))
        ctx.addIssue({ code: 'custom', path: ['participants', i, 'name'], message: `duplicate participant name "${p.name}"` });
      names.set(p.name, i);
      if (p.token !== undefined) {
        if (tokens.has(p.token))
          ctx.addIssue({
            code: 'custom',
            path: ['participants', i, 'token'],
            message: `same token as participants[${tokens.get(p.token)}] (tokens identify participants)`,
          });
        tokens.set(p.token, i);
      }
    });
    // A participant's server must not be one of the daemon's own displays: it would connect to itself.
    const own = localDisplayNumber;
    const confDisplays = new Map(c.conferences.map((conf) => [parseDisplay(conf.display).number, conf.name]));
    c.participants.forEach((p, i) => {
      const n = own(p.display);
      if (n === null) return;
      if (confDisplays.has(n))
        ctx.addIssue({
          code: 'custom',
          path: ['participants', i, 'display'],
          message: `:${n} is conference "${confDisplays.get(n)}"'s own display (the daemon would connect to itself)`,
        });
      else if (c.runtimeDisplays && n >= c.runtimeDisplays.from && n <= c.runtimeDisplays.to) {
        ctx.addIssue({
          code: 'custom',
          path: ['participants', i, 'display'],
          message: `:${n} is inside runtimeDisplays (the daemon would connect to itself)`,
        });
      }
    });
    const confNames = new Set<string>();
    const displays = new Map<number, string>();
    c.conferences.forEach((conf, i) => {
      if (confNames.has(conf.name))
        ctx.addIssue({ code: 'custom', path: ['conferences', i, 'name'], message: `duplicate conference name "${conf.name}"` });
      confNames.add(conf.name);
      const n = parseDisplay(conf.display).number;
      if (displays.has(n))
        ctx.addIssue({
          code: 'custom',
          path: ['conferences', i, 'display'],
          message: `display :${n} is also used by conference "${displays.get(n)}"`,
        });
      displays.set(n, conf.name);
      const master = names.has(conf.master) ? c.participants[names.get(conf.master)!]! : undefined;
      if (!master) ctx.addIssue({ code: 'custom', path: ['conferences', i, 'master'], message: `no participant named "${conf.master}"` });
      else if (!master.may.includes('start'))
        ctx.addIssue({
          code: 'custom',
          path: ['conferences', i, 'master'],
          message: `participant "${conf.master}" may not start a conference (add "start" to its "may")`,
        });
      conf.participants.forEach((p, j) => {
        if (!names.has(p))
          ctx.addIssue({ code: 'custom', path: ['conferences', i, 'participants', j], message: `no participant named "${p}"` });
        else if (p === conf.master)
          ctx.addIssue({ code: 'custom', path: ['conferences', i, 'participants', j], message: `"${p}" is already the master` });
      });
      conf.allow?.forEach((p, j) => {
        if (!names.has(p)) ctx.addIssue({ code: 'custom', path: ['conferences', i, 'allow', j], message: `no participant named "${p}"` });
      });
    });
  });

/** The local display number a participant's server is on (`:N`, `localhost:N`), or null for another host. */
export function localDisplayNumber(display: string): number | null {
  const d = parseDisplay(display);
  return d.host === null || d.host === 'localhost' || d.host === '127.0.0.1' ? d.number : null;
}

/** A validated tandem-xconf configuration, defaults filled in. */
export type XconfConfig = z.output<typeof configSchema>;
/** One configured participant: name, display, token, permissions. */
export type ParticipantConfig = XconfConfig['participants'][number];
/** One configured conference: name, display, master, participants, focus trigger. */
export type ConferenceConfig = XconfConfig['conferences'][number];

/** Validates a parsed JSON value; throws ConfigError naming every bad field. */
export function parseConfig(value: unknown): XconfConfig {
  const parsed = configSchema.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => ({
        path:
          i.path.length > 0
            ? formatPath(i.path)
            : i.code === 'unrecognized_keys'
              ? `(root) ${(i as { keys?: string[] }).keys?.join(', ') ?? ''}`.trim()
              : '(root)',
        message:
          i.code === 'unrecognized_keys' ? `unknown field ${(i as { keys?: string[] }).keys?.map((k) => `"${k}"`).join(', ')}` : i.message,
      })),
    );
  }
  return parsed.data;
}

/** Reads and validates a JSON configuration file. */
export function loadConfig(path: string): XconfConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path, message: `cannot read: ${(err as Error).message}` }]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([{ path, message: `not JSON: ${(err as Error).message}` }]);
  }
  return parseConfig(value);
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

export interface FlagsConference {
  readonly display: string;
  readonly master: string;
  readonly participants: readonly string[];
  readonly trigger: string;
  readonly tcp?: boolean;
  /** Applications must present the conference's cookie (default true; `--no-cookie` sets false). */
  readonly requireCookie?: boolean;
  readonly xauthority?: string;
}

/**
 * The command line's single conference as a configuration: participants named after their displays,
 * allowed to do everything, without tokens (the ctl socket's file permissions are the only gate for ctl);
 * applications need the conference's cookie unless `requireCookie` is false.
 */
export function configFromFlags(f: FlagsConference, socket?: string): XconfConfig {
  const displays = [f.master, ...f.participants];
  return parseConfig({
    control: socket ? { socket } : {},
    participants: displays.map((d) => ({
      name: d,
      display: d,
      may: ['start', 'join', 'launch'],
      ...(f.xauthority ? { xauthority: f.xauthority } : {}),
    })),
    conferences: [
      {
        name: 'default',
        display: f.display,
        master: f.master,
        participants: f.participants,
        focusTrigger: f.trigger,
        tcp: f.tcp ?? false,
        requireCookie: f.requireCookie ?? true,
      },
    ],
  });
}
