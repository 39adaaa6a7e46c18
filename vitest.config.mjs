import { defineConfig } from 'vitest/config';

// Unit tests of the pure TypeScript modules (no DOM, no JupyterLab).
export default defineConfig({
  test: {
    include: ['labextension/test/**/*.test.ts'],
    environment: 'node'
  }
});
