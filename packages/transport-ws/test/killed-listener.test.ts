// A real listener process killed with SIGKILL: the dialler's connection must close promptly (remote).
import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { expectKilledListenerNoticed } from '@tandem/transport/compliance';
import { websocket } from '../src/index.js';

it('notices a SIGKILLed listener process on the dialling side', () =>
  expectKilledListenerNoticed({
    transport: websocket(),
    peerModule: fileURLToPath(new URL('./peer-transport.ts', import.meta.url)),
    listenAddress: 'ws://127.0.0.1:0/tandem',
  }));
