import { projectConfig } from '../../vitest.shared.js';

export default projectConfig(import.meta.dirname, {
  globalSetup: ['./test/global-setup.ts'],
  testTimeout: 30_000,
});
