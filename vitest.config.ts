import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run when a test leaves a namespace or a process in a deleted namespace behind.
    globalSetup: ['test/global-setup.ts'],
    // Real-traffic tests share the machine's namespaces and CPU: run files one at a time.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
