import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

// Library mode: one ES module with every dependency left to the host app (no second Vue, Apollo
// Client or graphql-js realm), and the SFC's styles extracted to signet-vue.css.
const external = [/^vue$/, /^@apollo\/client(\/|$)/, /^graphql(\/|$)/, /^thumbhash$/];

export default defineConfig({
  root: new URL('.', import.meta.url).pathname,
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: 'src/index.ts',
      formats: ['es'],
      fileName: () => 'signet-vue.js',
      cssFileName: 'signet-vue',
    },
    rolldownOptions: { external },
  },
});
