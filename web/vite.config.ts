import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// The gateway serves the built app at `/`; in development Vite serves it and forwards the
// gateway's routes (SSE subscriptions included) to the gateway on :4000.
const gateway = process.env.SIGNET_GATEWAY ?? 'http://localhost:4000';

export default defineConfig(({ command }) => ({
  root: new URL('.', import.meta.url).pathname,
  plugins: [vue()],
  // Apollo Client's development-only checks and messages stay out of the production bundle.
  define: command === 'build' ? { 'globalThis.__DEV__': 'false' } : {},
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
  server: {
    proxy: {
      '/graphql': { target: gateway, changeOrigin: true },
      '/proxy': { target: gateway, changeOrigin: true },
      '/local-bucket': { target: gateway, changeOrigin: true },
    },
  },
}));
