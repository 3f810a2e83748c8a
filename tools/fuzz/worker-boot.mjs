// Worker-thread entry: worker threads do not inherit the `--import tsx` hooks of the main thread, so the
// worker registers them itself, then loads the TypeScript worker (the `@tandem/source` condition comes
// with the inherited execArgv).
import { register } from 'tsx/esm/api';

register();
await import(new URL('./worker.ts', import.meta.url).href);
