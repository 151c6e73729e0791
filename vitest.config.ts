import { defineConfig } from 'vitest/config';

// One worker process: every test file talks to the same (CPU) WebGPU adapter, and on a
// 2-core machine parallel files only fight over lavapipe's two worker threads.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    // Memory tests collect earlier tests' garbage before counting live buffers (test/helpers.ts).
    execArgv: ['--expose-gc'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
