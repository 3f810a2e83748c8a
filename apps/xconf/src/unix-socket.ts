import { connect } from 'node:net';

/** Whether something accepts connections on the unix socket at `path` (a live daemon or server, not a stale file). */
export function socketAcceptsConnections(path: string): Promise<boolean> {
  return new Promise<boolean>((res) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}
