// The img2loc web app: locate a photo (camera, file, drop, paste, examples), a game mode
// and a screen assist for GeoGuessr. Everything runs in this page; nothing is uploaded.
import './style.css';
import { combineViews, draftSize, modelInputs } from './inputs.js';
import { readPhoto } from './image.js';
import { WorldMap } from './map.js';
import { Model } from './model.js';
import { Game } from './game.js';
import { Assist } from './assist.js';
import { Locate } from './locate.js';
import { loadExamples } from './examples.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const MODEL_BASE = new URL(params.get('model') ?? 'model/', document.baseURI).href;
const ISOLATED = self.crossOriginIsolated === true;
const REQUESTED_THREADS = Number(params.get('threads')) || (ISOLATED ? Math.min(2, navigator.hardwareConcurrency || 1) : 1);
// Score-optimal by default (as `img2loc predict`); ?decode=hierarchical for the argmax cell.
const RULE = params.get('decode') === 'hierarchical' ? 'hierarchical' : 'score';

/**
 * The header's status line, one message per mode: switching tabs shows that mode's own
 * message (or the app's), so an old error of one mode never shows in another.
 */
class Status {
  constructor(el) {
    this.el = el;
    this.msgs = {};
    this.mode = 'locate';
  }

  set(mode, text, kind = '', title = '') {
    this.msgs[mode] = text ? { text, kind, title } : null;
    if (mode === this.mode || mode === 'app') this.render();
  }

  show(mode) {
    this.mode = mode;
    this.render();
  }

  render() {
    const m = this.msgs[this.mode] ?? this.msgs.app ?? { text: '', kind: '', title: '' };
    this.el.textContent = m.text;
    this.el.className = m.kind;
    this.el.title = m.title;
  }
}

const status = new Status($('status'));
const map = new WorldMap($('map'));
const t0 = performance.now();

let firstAnswer;
const app = {
  answered: new Promise((ok) => (firstAnswer = ok)),
  model: null,
  last: null,
  ready: null,
  rule: RULE,
  threads: null,
  requestedThreads: REQUESTED_THREADS,
  /** Milliseconds since navigation: model ready, first answer (for benchmarks). */
  timings: {},
  status,
  map,
  /** Decode a photo (file or blob) into pixels, EXIF GPS and the file's head. */
  read(blob, name = blob.name ?? 'photo') {
    const pre = () => this.model?.pre ?? { resize_size: 256 };
    return readPhoto(blob, name, { draftFor: (w, h) => draftSize(pre(), w, h) });
  },
  /**
   * Per-cell probabilities of decoded pixels, as `img2loc predict` computes them: a 360°
   * panorama is run as its rendered views, whose probabilities are averaged.
   */
  async infer(img) {
    const model = await this.ready;
    await this.warm;
    const t = performance.now();
    const inp = modelInputs(img.rgb, img.width, img.height, model.pre, { isJpeg: img.jpeg, head: img.head });
    const tp = performance.now();
    const probs = combineViews(await model.runBatch(inp.inputs), model.cells.n);
    const tr = performance.now();
    return { probs, views: inp.inputs.length, panorama: inp.panorama, preprocessMs: tp - t, inferenceMs: tr - tp };
  },
  /** Probabilities and timings for an image blob: used by the game, tests and benchmarks. */
  async probabilities(blob) {
    return this.infer(await this.read(blob));
  },
};
window.img2loc = app;
new MutationObserver((_, obs) => {
  if (document.body.dataset.handled) {
    firstAnswer();
    obs.disconnect();
  }
}).observe(document.body, { attributes: true, attributeFilter: ['data-handled'] });

function threadsNote(n) {
  if (n > 1) return `${n} threads`;
  if (!ISOLATED) return '1 thread: this site is served without the headers that allow more';
  if (REQUESTED_THREADS > 1) return '1 thread: this browser does not allow more here';
  return '1 thread';
}

app.ready = Model.load(MODEL_BASE, { variant: params.get('variant') ?? 'auto', threads: REQUESTED_THREADS }).then(
  (m) => {
    app.model = m;
    app.threads = m.threads;
    app.timings.ready = performance.now();
    // ONNX Runtime's first run allocates its buffers: do it while the user picks a photo.
    app.warm = m.run(new Float32Array(3 * m.pre.input_size ** 2)).catch(() => {});
    const s = ((performance.now() - t0) / 1000).toFixed(1);
    status.set('app', `Ready: everything runs on this device (${threadsNote(m.threads)}).`, 'ok', `${m.cells.n} places the model knows; ${m.file}; loaded in ${s} s`);
    document.body.dataset.ready = '1';
    document.body.dataset.threads = String(m.threads);
    cacheForOffline([...m.urls, new URL('examples/locations.csv', document.baseURI).href]);
    return m;
  },
  (e) => {
    status.set('app', `The model could not be loaded: ${e.message}`, 'error');
    document.body.dataset.ready = 'error';
    throw e;
  },
);

// ------------------------------------------------------------------ offline app
/** Install the service worker (the app then opens and answers offline) and hand it the
 * model files this page loaded, which it keeps for offline use. */
function cacheForOffline(urls) {
  app.offline?.then((reg) => reg?.active?.postMessage({ type: 'cache', urls })).catch(() => {});
}
if ('serviceWorker' in navigator && isSecureContext && import.meta.env.PROD && params.get('sw') !== '0') {
  // Installed once the model is ready and the page is idle (or has answered): the worker
  // copies ~20 MB into its cache, which must not compete with the first answer.
  app.offline = app.ready
    .then(() => Promise.race([new Promise((ok) => setTimeout(ok, 4000)), app.answered]))
    .then(() => navigator.serviceWorker.register('./sw.js'))
    .then(() => navigator.serviceWorker.ready)
    .catch(() => null);
} else app.offline = Promise.resolve(null);

// ------------------------------------------------------------------ modes
app.examples = loadExamples(new URL('examples/', document.baseURI).href).catch(() => []);
const locate = new Locate({ app, map: map.layer('locate'), $, status });
const game = new Game({ app, world: map, map: map.layer('game'), $, status });
const assist = new Assist({ app, map: map.layer('assist'), $, status });
Object.assign(app, { locate, game, assist });
// Kept for tests and the benchmark.
app.locateExample = (i) => locate.example(i);
app.startCamera = () => locate.startCamera();
app.capture = () => locate.capture();
const modes = { locate, game, assist };

function selectTab(name, focus = false) {
  const tabs = [...document.querySelectorAll('#tabs [role=tab]')];
  for (const t of tabs) {
    const on = t.dataset.tab === name;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    if (on && focus) t.focus();
  }
  for (const [n, m] of Object.entries(modes)) if (n !== name) m.leave?.();
  for (const p of document.querySelectorAll('.tab')) p.hidden = p.id !== `tab-${name}`;
  map.activate(name);
  status.show(name);
  modes[name].enter?.();
  document.body.dataset.mode = name;
}
app.selectTab = selectTab;
for (const b of document.querySelectorAll('#tabs [role=tab]')) b.addEventListener('click', () => selectTab(b.dataset.tab));
// Arrow keys move between tabs (WAI-ARIA tabs pattern).
$('tabs').addEventListener('keydown', (e) => {
  const tabs = [...document.querySelectorAll('#tabs [role=tab]')];
  const i = tabs.indexOf(document.activeElement);
  if (i < 0) return;
  const j = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
  if (j === undefined) return;
  e.preventDefault();
  selectTab(tabs[(j + tabs.length) % tabs.length].dataset.tab, true);
});
selectTab('locate');

// ------------------------------------------------------------------ map options
map.onOsmStatus = (text) => ($('osm-status').textContent = text);
$('osm').addEventListener('change', (e) => map.setOsm(e.target.checked));

const auto = params.get('example');
if (auto !== null) app.ready.then(() => locate.example(Number(auto)));
