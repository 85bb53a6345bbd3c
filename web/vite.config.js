// Vite builds the widget into dist/, which is committed and embedded in the
// Go binary (web/embed.go). The output must be byte-for-byte reproducible:
// scripts/check-dist.mjs rebuilds into a temporary directory and compares,
// so file names carry no content hash (the server sends Cache-Control:
// no-cache with an ETag instead).
import { defineConfig } from "vite";

export default defineConfig({
  // Relative URLs: the widget works under /app/ or any other prefix.
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/[name].js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
  server: {
    // `npm run dev` next to `go tool task demo`: the API comes from the service.
    proxy: { "/eats": "http://localhost:8080" },
  },
});
