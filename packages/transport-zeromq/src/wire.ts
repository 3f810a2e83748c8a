/**
 * The frames Tandem sends over ZeroMQ. Every ZeroMQ message is [kind] or [kind, payload] (a ROUTER
 * prepends the peer's routing id). A dialler (DEALER) opens with HELLO; the listener (ROUTER) answers
 * WELCOME or REFUSE. Each side announces its largest accepted message and its receive window; data
 * flows under credit (the receiver grants bytes back as its application reads), so a ROUTER never has
 * to stop reading for one slow connection.
 */
export enum Kind {
  Hello = 1,
  Welcome = 2,
  Refuse = 3,
  Data = 4,
  Credit = 5,
  Ping = 6,
  Pong = 7,
  Close = 8,
  CloseAck = 9,
  /** "I have a message of N bytes for you": sent instead of a message larger than the peer accepts. */
  TooLarge = 10,
}

export const PROTOCOL_VERSION = 1;

/** Why a CLOSE was sent. */
export enum CloseCode {
  Normal = 0,
  ProtocolError = 1,
  MessageTooLarge = 2,
  Timeout = 3,
}

/** Bytes charged per message against the window, so floods of empty messages stay bounded too. */
export const MESSAGE_OVERHEAD = 32;

export interface Greeting {
  readonly version: number;
  readonly maxMessageSize: number;
  readonly window: number;
}

const GREETING_BYTES = 12;
const U32_MAX = 0xffffffff;

export function encodeGreeting(g: Greeting): Buffer {
  const b = Buffer.alloc(GREETING_BYTES);
  b.writeUInt8(g.version, 0);
  b.writeUInt32BE(Math.min(g.maxMessageSize, U32_MAX), 4);
  b.writeUInt32BE(Math.min(g.window, U32_MAX), 8);
  return b;
}

/** Undefined when the payload is not a greeting of a version we speak. */
export function decodeGreeting(payload: Buffer | undefined): Greeting | undefined {
  if (!payload || payload.byteLength !== GREETING_BYTES) return undefined;
  const version = payload.readUInt8(0);
  const maxMessageSize = payload.readUInt32BE(4);
  const window = payload.readUInt32BE(8);
  if (version !== PROTOCOL_VERSION || maxMessageSize === 0 || window === 0) return undefined;
  return { version, maxMessageSize, window };
}

export function encodeNumber(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n, 0);
  return b;
}

export function decodeNumber(payload: Buffer | undefined): number | undefined {
  if (payload?.byteLength !== 8) return undefined;
  const n = payload.readDoubleBE(0);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function encodeClose(code: CloseCode, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 200), 'utf8');
  return Buffer.concat([Buffer.from([code]), text]);
}

export function decodeClose(payload: Buffer | undefined): { code: number; reason: string } {
  if (!payload || payload.byteLength === 0) return { code: CloseCode.Normal, reason: '' };
  return { code: payload[0]!, reason: payload.subarray(1).toString('utf8') };
}

export const kindFrame = (kind: Kind): Buffer => KIND_FRAMES[kind]!;
const KIND_FRAMES: Buffer[] = Array.from({ length: 11 }, (_, k) => Buffer.from([k]));
