import vue from '@vitejs/plugin-vue';
import { defineProject } from 'vitest/config';

// Component and unit tests of @signet/vue (happy-dom), against its sources.
export default defineProject({
  plugins: [vue()],
  test: {
    name: 'vue',
    root: new URL('.', import.meta.url).pathname,
    include: ['src/**/*.test.ts'],
    environment: 'happy-dom',
  },
});
