// Builds the app into the Python package (src/img2loc/server/static), which `img2loc serve`
// ships; the same folder is a static site for any web host (see README "Web app").
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig } from 'vite';

const ORT_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'];
const ortDist = fileURLToPath(new URL('./node_modules/onnxruntime-web/dist/', import.meta.url));

// Kept in step with img2loc.server.app.CSP (a test checks they agree).
export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data: blob: https://tile.openstreetmap.org",
  "connect-src 'self'",
  "worker-src 'self'",
  "media-src 'self' blob: mediastream:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** The multi-threaded WebAssembly runtime as plain files beside the app, loaded by ORT at run time. */
function ortRuntime() {
  return {
    name: 'img2loc-ort-runtime',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = ORT_FILES.find((f) => req.url.endsWith(`/ort/${f}`));
        if (!name) return next();
        res.setHeader('Content-Type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        res.end(readFileSync(ortDist + name));
      });
    },
    generateBundle() {
      for (const f of ORT_FILES) this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: readFileSync(ortDist + f) });
    },
  };
}

/** The Content-Security-Policy as a meta tag too, for static hosts that send no headers. */
function cspMeta() {
  return {
    name: 'img2loc-csp-meta',
    apply: 'build',
    // frame-ancestors only works as a header; browsers ignore it (with a warning) in a meta tag.
    transformIndexHtml: () => [
      {
        tag: 'meta',
        attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP.replace(/; frame-ancestors [^;]*/, '') },
        injectTo: 'head-prepend',
      },
    ],
  };
}

/**
 * The built page loads its stylesheet before its script: a browser that runs the module
 * before the CSS applies (WebKit on a first visit) would otherwise measure the map as a strip.
 */
function cssFirst() {
  return {
    name: 'img2loc-css-first',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(html) {
        const links = html.match(/\s*<link rel="stylesheet"[^>]*>/g) ?? [];
        for (const l of links) html = html.replace(l, '');
        return html.replace(/(\s*)<script type="module"/, (m, ws) => `${links.map((l) => ws + l.trim()).join('')}${m}`);
      },
    },
  };
}

/** static/sw.js: the service worker with the list of the build's files and a version. */
function serviceWorker() {
  return {
    name: 'img2loc-sw',
    apply: 'build',
    enforce: 'post',
    generateBundle(_, bundle) {
      const publicDir = fileURLToPath(new URL('./public/', import.meta.url));
      const publicFiles = readdirSync(publicDir, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
      const files = ['index.html', ...Object.keys(bundle), ...publicFiles].filter((f) => f !== 'sw.js' && !f.endsWith('.map'));
      const list = ['./', ...[...new Set(files)].sort().map((f) => `./${f}`)];
      const hash = createHash('sha256');
      for (const f of Object.keys(bundle).sort()) {
        const o = bundle[f];
        hash.update(f).update(o.type === 'chunk' ? o.code : o.source);
      }
      for (const f of publicFiles.sort()) hash.update(f).update(readFileSync(publicDir + f));
      const src = readFileSync(fileURLToPath(new URL('./src/sw.js', import.meta.url)), 'utf8')
        .replace('__VERSION__', hash.digest('hex').slice(0, 12))
        .replace('__PRECACHE__', JSON.stringify(list, null, 1));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source: src });
    },
  };
}

export default defineConfig({
  base: './',
  // ORT's build that loads its .wasm/.mjs from `env.wasm.wasmPaths` instead of inlining them.
  resolve: { conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions] },
  plugins: [ortRuntime(), cspMeta(), cssFirst(), serviceWorker()],
  server: {
    headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
  },
  build: {
    outDir: '../src/img2loc/server/static',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
    modulePreload: { polyfill: false },
  },
});
