import * as zmq from 'zeromq';
import type { ResolvedZmqOptions } from './options.js';

let sharedContext: zmq.Context | undefined;

/**
 * One libzmq context for all Tandem sockets, with room for many (libzmq's default is 1 023 sockets, and a
 * dialler uses two: its DEALER and the monitor that reports its connection events).
 */
export function zmqContext(): zmq.Context {
  sharedContext ??= new zmq.Context({ maxSockets: 16_384, ioThreads: 2 });
  return sharedContext;
}

/** Options both socket types share. */
export function commonSocketOptions(options: ResolvedZmqOptions, maxMessageSize: number) {
  return {
    context: zmqContext(),
    linger: 0,
    // Tandem's credit flow control bounds what is queued per connection; libzmq's message-count limits
    // would only add head-of-line blocking on a ROUTER.
    sendHighWaterMark: 0,
    receiveHighWaterMark: 0,
    // A frame is [kind] or a payload of at most maxMessageSize bytes; larger ones drop the TCP connection.
    maxMessageSize,
    handshakeInterval: options.zmtpHandshakeTimeoutMs,
    ...(options.zmtpHeartbeatIntervalMs > 0
      ? {
          heartbeatInterval: options.zmtpHeartbeatIntervalMs,
          heartbeatTimeout: options.zmtpHeartbeatIntervalMs * 3,
          heartbeatTimeToLive: options.zmtpHeartbeatIntervalMs * 3,
        }
      : {}),
  };
}

/** Error codes zeromq.js uses for an operation on a socket that was closed meanwhile. */
export function isSocketClosedError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'EAGAIN' || code === 'ENOTSOCK' || code === 'ETERM' || code === 'EBADF';
}
