import vue from '@vitejs/plugin-vue';
import { defineProject } from 'vitest/config';

// Component tests of the web app (happy-dom); the Chromium tests live in web/e2e.
export default defineProject({
  plugins: [vue()],
  test: {
    name: 'web',
    root: new URL('.', import.meta.url).pathname,
    include: ['src/**/*.test.ts'],
    environment: 'happy-dom',
  },
});
