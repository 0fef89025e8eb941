import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// A plain Vite + Vue app: @signet/vue comes from node_modules (the workspace link to its built
// dist), exactly as it would from the registry.
export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
});
