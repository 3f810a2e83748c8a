// The control protocol: one JSON object per line each way on the ctl unix socket, validated with zod.
import { z } from 'zod';

export const CTL_ERROR_CODES = ['bad-request', 'unauthorised', 'not-found', 'conflict', 'failed'] as const;
/** One of CTL_ERROR_CODES. */
export type CtlErrorCode = (typeof CTL_ERROR_CODES)[number];

/** A refused or failed control request; `code` says which kind. */
export class CtlError extends Error {
  static readonly NAME = 'CtlError';
  override readonly name = 'CtlError';
  constructor(
    readonly code: CtlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const token = z.string().max(1024).optional();
const conference = z.string().min(1).max(64);
const participant = z.string().min(1).max(256);

/** The zod schema of a ctl request line: list, status, start, join, leave, focus, launch, drop, stop. */
export const ctlRequestSchema = z.discriminatedUnion('cmd', [
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('list') }),
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('status'), conference: conference.optional() }),
  z.strictObject({
    id: z.number().int().optional(),
    cmd: z.literal('start'),
    conference,
    master: participant,
    token,
    display: z.string().max(64).optional(),
    focusTrigger: z.string().max(64).optional(),
  }),
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('join'), conference, participant, token }),
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('leave'), conference, participant, token }),
  z.strictObject({
    id: z.number().int().optional(),
    cmd: z.literal('focus'),
    conference,
    participant,
    token,
    app: z.number().int().positive().optional(),
  }),
  z.strictObject({
    id: z.number().int().optional(),
    cmd: z.literal('launch'),
    conference,
    as: participant.optional(),
    token,
    argv: z.array(z.string().max(4096)).min(1).max(256),
  }),
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('drop'), conference, app: z.number().int().positive(), token }),
  z.strictObject({ id: z.number().int().optional(), cmd: z.literal('stop'), conference, token }),
]);
/** A ctl request. */
export type CtlRequest = z.infer<typeof ctlRequestSchema>;

/** One application of a conference as ctl reports it: id, focus holder, participants it is shown to. */
export interface ApplicationInfo {
  readonly id: number;
  readonly focus: string | null;
  readonly participants: readonly string[];
}
/** One conference as ctl reports it: display, master, participants, focus trigger, cookie, applications. */
export interface ConferenceInfo {
  readonly name: string;
  readonly display: string;
  readonly master: string;
  readonly participants: ReadonlyArray<{ readonly name: string; readonly display: string }>;
  readonly focusTrigger: string;
  readonly requireCookie: boolean;
  /** The Xauthority file holding the conference's cookie (only readable by the daemon's user). */
  readonly xauthority: string | null;
  readonly applications: readonly ApplicationInfo[];
}

/** A ctl reply line: the result, or an error with its code. */
export type CtlReply =
  | { readonly id?: number | undefined; readonly ok: true; readonly result: unknown }
  | { readonly id?: number | undefined; readonly ok: false; readonly error: { readonly code: CtlErrorCode; readonly message: string } };

export const ctlReplySchema = z.union([
  z.object({ id: z.number().optional(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.number().optional(), ok: z.literal(false), error: z.object({ code: z.enum(CTL_ERROR_CODES), message: z.string() }) }),
]);

/** Longest request line accepted; a longer one gets an error reply and the connection is closed. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Parses one request line; throws CtlError('bad-request') naming the bad field. */
export function parseCtlRequest(line: string): CtlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new CtlError('bad-request', `not JSON: ${(err as Error).message}`);
  }
  const r = ctlRequestSchema.safeParse(value);
  if (!r.success) {
    throw new CtlError(
      'bad-request',
      r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(request)'}: ${i.message}`).join('; '),
    );
  }
  return r.data;
}
