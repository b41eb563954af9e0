import { defineConfig } from 'vitest/config';

// In this repository every @maskcon package resolves to its TypeScript sources (the
// `@maskcon/source` export condition), so tests run without a build. Worker threads and child
// processes resolve through Node itself, so they get the condition through NODE_OPTIONS (set
// by pnpm from .npmrc; repeated here for `vitest` started some other way).
const SOURCE = '@maskcon/source';
if (!process.env.NODE_OPTIONS?.includes(`--conditions=${SOURCE}`)) {
  process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --conditions=${SOURCE}`.trim();
}

export default defineConfig({
  // Vite's default conditions (client and server) with ours first.
  resolve: { conditions: [SOURCE, 'module', 'browser', 'development|production'] },
  ssr: { resolve: { conditions: [SOURCE, 'module', 'node', 'development|production'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // wasm kernels and training are CPU bound: two cores, two forks.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
