import { defineConfig } from 'vite';

// React without @vitejs/plugin-react: Vite's own transform compiles JSX with the automatic runtime.
export default defineConfig({
  oxc: { jsx: { runtime: 'automatic' } },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, assetsInlineLimit: 0 },
  server: { proxy: { '/portal/api': 'http://127.0.0.1:8080' } },
});
