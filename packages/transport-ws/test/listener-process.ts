// Child process for the "listener killed" test: listens, prints its address, echoes, runs until killed.
import { websocket } from '../src/index.js';

const listener = await websocket().listen('ws://127.0.0.1:0/tandem');
process.stdout.write(`${listener.address}\n`);
for await (const conn of listener) {
  void (async () => {
    for await (const m of conn) await conn.send(m);
  })().catch(() => undefined);
}
