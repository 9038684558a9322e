// The offline app: after one visit the page opens and answers photos with no network.
// Built into static/sw.js with the list of the build's files (see vite.config.js).
//
// * The app's own files are kept per build version; hashed assets come from the cache,
//   everything else goes to the network first (revalidated with ETags: cheap) and falls
//   back to the cache when the network is gone.
// * The model, the examples and the game's photos are kept as they are fetched (the page
//   also hands over the model files it loaded before this worker took control).
// * Responses from hosts that send no cross-origin isolation headers get them here, so a
//   static host without those headers still runs the model with threads from the second
//   visit on (the page says when it runs on one thread).
const VERSION = '578620815f0c';
const PRECACHE = [
 "./",
 "./assets/countries-50m-BphFPm15.json",
 "./assets/index-BUIRn96s.css",
 "./assets/index-BzfDJcao.js",
 "./assets/libheif-bundle-D7VHfpN4.js",
 "./icon-192.png",
 "./icon-512.png",
 "./icon.svg",
 "./index.html",
 "./manifest.webmanifest",
 "./ort/ort-wasm-simd-threaded.mjs",
 "./ort/ort-wasm-simd-threaded.wasm"
];
const SHELL = `img2loc-app-${VERSION}`;
const DATA = 'img2loc-data';

self.addEventListener('install', (e) => {
  e.waitUntil(
    (async () => {
      const c = await caches.open(SHELL);
      await c.addAll(PRECACHE);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (e) => {
  e.waitUntil(
    (async () => {
      for (const k of await caches.keys()) if (k.startsWith('img2loc-app-') && k !== SHELL) await caches.delete(k);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (e) => {
  if (e.data?.type !== 'cache' || !Array.isArray(e.data.urls)) return;
  const same = e.data.urls.filter((u) => new URL(u, self.location.href).origin === self.location.origin);
  e.waitUntil(
    (async () => {
      const c = await caches.open(DATA);
      for (const u of same) if (!(await c.match(u))) await c.add(u).catch(() => {});
    })(),
  );
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return; // OpenStreetMap tiles: the network only
  e.respondWith(answer(req, url));
});

const isShell = (url) => !/\/(model|examples|game)\//.test(url.pathname);

async function answer(req, url) {
  if (url.pathname.includes('/assets/')) {
    const hit = await caches.match(req);
    if (hit) return isolated(hit);
  }
  try {
    const res = await fetch(req);
    if (res.ok && res.type === 'basic' && !req.headers.has('range')) {
      const c = await caches.open(isShell(url) ? SHELL : DATA);
      await c.put(req, res.clone());
    }
    return isolated(res);
  } catch (err) {
    const hit =
      (await caches.match(req)) ??
      (req.mode === 'navigate' ? (await caches.match(new URL('./', self.location.href).href)) ?? (await caches.match(new URL('./index.html', self.location.href).href)) : undefined) ??
      (await caches.match(req, { ignoreSearch: true }));
    if (hit) return isolated(hit);
    throw err;
  }
}

/** The response with COOP/COEP/CORP added when the host sent none. */
function isolated(res) {
  if (res.type !== 'basic' || res.status === 0 || res.headers.has('Cross-Origin-Embedder-Policy')) return res;
  const h = new Headers(res.headers);
  h.set('Cross-Origin-Opener-Policy', 'same-origin');
  h.set('Cross-Origin-Embedder-Policy', 'require-corp');
  h.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: h });
}
