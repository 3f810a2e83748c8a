// The client side of the control socket: one request, one reply.
import { connect } from 'node:net';
import { CtlError, ctlReplySchema, type CtlRequest } from './ctl-protocol.js';

/** Sends one request to the daemon at `path` and resolves with its result; rejects with CtlError on a refusal. */
export function ctlRequest(path: string, req: CtlRequest, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    let settled = false;
    const finish = (err: Error | null, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new CtlError('failed', `no reply from ${path} within ${timeoutMs} ms`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on('error', (err) => finish(new CtlError('failed', `cannot reach the tandem-xconf daemon at ${path}: ${err.message}`)));
    sock.on('close', () => finish(new CtlError('failed', `the daemon closed the connection without a reply`)));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let reply;
      try {
        reply = ctlReplySchema.parse(JSON.parse(buf.slice(0, nl)));
      } catch (err) {
        finish(new CtlError('failed', `malformed reply from the daemon: ${(err as Error).message}`));
        return;
      }
      if (reply.ok) finish(null, reply.result);
      else finish(new CtlError(reply.error.code, reply.error.message));
    });
  });
}
