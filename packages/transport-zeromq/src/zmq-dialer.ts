import {
  AbortError,
  ConnectionRefusedError,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_RECEIVE_HIGH_WATER_MARK,
  ProtocolError,
  TimeoutError,
  type Connection,
  type DialOptions,
} from '@tandem/transport';
import * as zmq from 'zeromq';
import { fromEndpoint, type ZmqAddress } from './address.js';
import type { ResolvedZmqOptions } from './options.js';
import { SocketSender } from './socket-sender.js';
import { commonSocketOptions, isSocketClosedError } from './sockets.js';
import { Kind, PROTOCOL_VERSION, decodeClose, decodeGreeting, encodeGreeting, kindFrame } from './wire.js';
import { ZmqConnection } from './zmq-connection.js';

const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
/** How long a closing DEALER keeps trying to deliver its last frames (the CLOSE or its acknowledgement). */
const CLOSE_LINGER_MS = 500;

/** What the DEALER's monitor has seen of its one TCP connection. */
type DialOutcome = { kind: 'welcome'; payload: Buffer | undefined } | { kind: 'error'; error: Error };

/** Dial: one DEALER socket per connection, HELLO → WELCOME, then the connection. */
export async function dialZmq(
  addr: ZmqAddress,
  address: string,
  options: ResolvedZmqOptions,
  dialOptions: DialOptions,
): Promise<Connection> {
  const signal = dialOptions.signal;
  if (signal?.aborted) throw new AbortError('dial aborted', { address, cause: signal.reason });
  const maxMessageSize = dialOptions.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  const window = dialOptions.receiveHighWaterMark ?? DEFAULT_RECEIVE_HIGH_WATER_MARK;
  const curve = options.curve;
  if (curve && curve.serverKey === undefined)
    throw new ProtocolError('dialling with CURVE needs curve.serverKey (the listener public key)', { address });
  const dealer = new zmq.Dealer({
    ...commonSocketOptions(options, Math.max(maxMessageSize, 64)),
    // The dial's own deadline governs; libzmq's handshake timer must not fire first.
    handshakeInterval: Math.max(options.zmtpHandshakeTimeoutMs, (dialOptions.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS) + 1_000),
    // One TCP connection is one Tandem connection: never reconnect behind the application's back.
    reconnectInterval: -1,
    ...(curve ? { curvePublicKey: curve.publicKey, curveSecretKey: curve.secretKey, curveServerKey: curve.serverKey! } : {}),
  });
  const sender = new SocketSender(dealer);
  let conn: ZmqConnection | undefined;
  let settleDial: ((outcome: DialOutcome) => void) | undefined;
  const dialed = new Promise<DialOutcome>((resolve) => (settleDial = resolve));
  const failDial = (error: Error): void => settleDial?.({ kind: 'error', error });

  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    sender.close();
    // Give the last frames (CLOSE / its acknowledgement) a moment to leave, without blocking anyone.
    try {
      dealer.linger = CLOSE_LINGER_MS;
    } catch {
      // already closed
    }
    dealer.close();
  };

  // Connection events: refusal, handshake failure, and later the loss of the TCP connection.
  void (async () => {
    let tcpConnected = false;
    let zmtpReady = false;
    try {
      for await (const event of dealer.events) {
        switch (event.type) {
          case 'connect':
            tcpConnected = true;
            break;
          case 'handshake':
            zmtpReady = true;
            break;
          case 'connect:retry':
          case 'close':
            if (!tcpConnected)
              failDial(new ConnectionRefusedError(`nothing accepts connections at ${address}`, { address, nothingListens: true }));
            break;
          case 'handshake:error:auth':
            // the listener's ZAP handler said no: its allow-list lacks our CURVE key, or it is full or closed
            failDial(
              new ConnectionRefusedError(
                `${address} refused the connection in the ZMTP handshake (status ${event.error?.status ?? '?'}: client key not allowed, or the listener is full or closed)`,
                { address, cause: event.error },
              ),
            );
            break;
          case 'handshake:error:protocol':
          case 'handshake:error:other':
            if ((event.error as { code?: string } | undefined)?.code === 'EAGAIN') {
              failDial(new TimeoutError(`ZMTP handshake with ${address} timed out`, { address, cause: event.error }));
            } else
              failDial(
                new ProtocolError(`ZMTP handshake with ${address} failed (${event.type}${event.error ? `: ${event.error.message}` : ''})`, {
                  address,
                  cause: event.error,
                }),
              );
            break;
          case 'disconnect':
            if (conn) conn.linkLost('the TCP connection dropped');
            else if (!zmtpReady)
              failDial(new ProtocolError(`ZMTP handshake with ${address} failed (security settings differ?)`, { address }));
            else failDial(new ConnectionRefusedError(`${address} dropped the connection during the handshake`, { address }));
            break;
          default:
            break;
        }
      }
    } catch {
      // the monitor ends with the socket
    }
  })();

  // The receive loop: the greeting first, then frames for the connection.
  void (async () => {
    try {
      for await (const frames of dealer) {
        const [kind, payload, ...extra] = frames;
        if (conn) {
          conn.handleFrames(kind, payload, extra.length > 0);
          continue;
        }
        const k = kind?.byteLength === 1 ? kind[0] : -1;
        if (k === Kind.Welcome) settleDial?.({ kind: 'welcome', payload });
        else if (k === Kind.Refuse)
          failDial(new ConnectionRefusedError(`${address} refused the connection: ${payload?.toString('utf8') ?? ''}`, { address }));
        else if (k === Kind.Close)
          failDial(new ConnectionRefusedError(`${address} closed the connection: ${decodeClose(payload).reason}`, { address }));
        else failDial(new ProtocolError(`${address} answered the greeting with frame kind ${k}`, { address }));
      }
    } catch (err) {
      if (!isSocketClosedError(err)) conn?.linkLost(String(err));
    }
  })();

  const timeoutMs = dialOptions.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const timer = setTimeout(() => failDial(new TimeoutError(`dial to ${address} timed out after ${timeoutMs} ms`, { address })), timeoutMs);
  const onAbort = (): void => failDial(new AbortError('dial aborted', { address, cause: signal?.reason }));
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    dealer.connect(addr.endpoint);
  } catch (cause) {
    failDial(new ConnectionRefusedError(`cannot connect to ${address}`, { address, cause }));
  }
  sender.send([kindFrame(Kind.Hello), encodeGreeting({ version: PROTOCOL_VERSION, maxMessageSize, window })]).catch(() => undefined);

  const outcome = await dialed;
  settleDial = undefined;
  clearTimeout(timer);
  signal?.removeEventListener('abort', onAbort);
  if (outcome.kind === 'error') {
    release();
    throw outcome.error;
  }
  const peer = decodeGreeting(outcome.payload);
  if (!peer) {
    release();
    throw new ProtocolError(`${address} sent a greeting this version does not understand`, { address });
  }
  conn = new ZmqConnection(
    { send: (frames) => sender.send(frames), release },
    { local: `${fromEndpoint(addr.endpoint)}#dealer`, remote: address },
    peer,
    options,
    {
      maxMessageSize,
      receiveHighWaterMark: window,
      sendHighWaterMark: dialOptions.sendHighWaterMark,
      maxSendQueueBytes: dialOptions.maxSendQueueBytes,
    },
  );
  return conn;
}
