// The transport the compliance suite's child-process peer uses (it is SIGKILLed by the suite).
import { zeromq } from '../src/index.js';

export const createTransport = () => zeromq();
