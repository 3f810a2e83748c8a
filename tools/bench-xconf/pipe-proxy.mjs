// Reference for bench:xconf: the thinnest possible Node relay (socket.pipe both ways, no parsing), to show
// how much of the round-trip cost is Node's socket I/O rather than tandem-xconf's work.
//   node pipe-proxy.mjs <listen display number> <target display number>
import { createServer, connect } from 'node:net';
import { rmSync } from 'node:fs';

const [listenOn, target] = process.argv.slice(2);
const path = `/tmp/.X11-unix/X${listenOn}`;
rmSync(path, { force: true });
const server = createServer((app) => {
  const x = connect(`/tmp/.X11-unix/X${target}`);
  app.pipe(x);
  x.pipe(app);
  app.on('error', () => x.destroy());
  x.on('error', () => app.destroy());
});
server.listen(path, () => console.log('ready'));
const stop = () => {
  rmSync(path, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
