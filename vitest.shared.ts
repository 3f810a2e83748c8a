// Shared vitest settings for every project: tests import workspace packages from their TypeScript
// sources (the "@tandem/source" export condition), and each project writes a JSON report to
// .reports/<name>.json so that tools/scripts/test.mjs can print one "N passed, N failed" line.
import { fileURLToPath } from 'node:url';
import { basename, dirname, resolve } from 'node:path';
import { defineConfig, type ViteUserConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));
const conditions = ['@tandem/source', 'module', 'node', 'development|production'];

export function projectConfig(projectDir: string, overrides: ViteUserConfig['test'] = {}): ViteUserConfig {
  const name = basename(projectDir);
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@tandem/source'] } },
    test: {
      root: projectDir,
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      environment: 'node',
      testTimeout: 30_000,
      hookTimeout: 60_000,
      reporters: ['default', ['json', { outputFile: resolve(root, '.reports', `${name}.json`) }]],
      ...overrides,
    },
  });
}
