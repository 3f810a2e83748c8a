import { projectConfig } from '../../vitest.shared.js';

// The chaos tests run real tandem-kv processes (apps/kv/dist, built by `nx test`'s ^build).
export default projectConfig(import.meta.dirname, { testTimeout: 180_000 });
