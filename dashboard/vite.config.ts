import { defineConfig } from "vite";
import { compression, defineAlgorithm } from "vite-plugin-compression2";

// The built files are committed (dashboard/dist) and embedded in the Rust binaries,
// so that `cargo run` needs no Node. Each asset gets a gzip and a brotli twin that
// the server picks by Accept-Encoding; hashed names let it say `immutable`.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
  // `npm run dev`: the page from source with hot reload, the APIs from `pulse serve`.
  server: {
    host: "127.0.0.1",
    proxy: Object.fromEntries(["/api", "/health", "/config.json"].map((path) => [path, "http://127.0.0.1:3000"])),
  },
  plugins: [
    compression({
      algorithms: [defineAlgorithm("gzip", { level: 9 }), defineAlgorithm("brotliCompress")],
      threshold: 0,
      deleteOriginalAssets: false,
    }),
  ],
});
