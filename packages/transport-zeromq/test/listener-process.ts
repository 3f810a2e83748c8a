// Child process for the "listener killed" test: listens, prints its address, echoes, runs until killed.
import { zeromq } from '../src/index.js';

const listener = await zeromq().listen('zmq+tcp://127.0.0.1:0');
process.stdout.write(`${listener.address}\n`);
for await (const conn of listener) {
  void (async () => {
    for await (const m of conn) await conn.send(m);
  })().catch(() => undefined);
}
