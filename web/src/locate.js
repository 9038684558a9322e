// Locate mode: photos (pick, drop, paste, examples) and camera frames go into one line and
// are answered in turn; nothing picked is dropped. The newest answer is on screen, earlier
// ones (and failures, with their reason) stay listed under "Earlier answers".
import { haversineKm, summarize } from './decode.js';
import { GUESS_EXPLAINED, describe, fmtKm, fmtPct } from './answer.js';
import { PhotoError, grabFrame } from './image.js';

const HISTORY = 30;

export class Locate {
  constructor({ app, map, $, status }) {
    Object.assign(this, { app, map, $, status });
    this.line = [];
    this.current = null;
    this.history = [];
    this.stream = null;
    this.facing = 'environment';
    this.liveTimer = null;
    $('explain').textContent = GUESS_EXPLAINED;

    $('photo-btn').addEventListener('click', () => $('file-input').click());
    $('file-input').addEventListener('change', (e) => {
      this.files([...e.target.files]);
      e.target.value = ''; // the same photo picked again is a new pick
    });
    addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (files.length) this.files(files);
    });
    let depth = 0;
    addEventListener('dragenter', (e) => {
      e.preventDefault();
      depth++;
      $('drop').hidden = false;
    });
    addEventListener('dragleave', () => {
      if (--depth <= 0) $('drop').hidden = true;
    });
    addEventListener('dragover', (e) => e.preventDefault());
    addEventListener('drop', (e) => {
      e.preventDefault();
      depth = 0;
      $('drop').hidden = true;
      const files = [...(e.dataTransfer?.files ?? [])];
      if (files.length) {
        if (this.app.selectTab && document.body.dataset.mode !== 'locate') this.app.selectTab('locate');
        this.files(files);
      }
    });

    app.examples.then((list) => {
      for (const [i, e] of list.entries()) {
        const o = document.createElement('option');
        o.value = String(i);
        o.textContent = `Example ${i + 1}${isPano(e) ? ' · 360° panorama' : ''}`;
        $('examples').append(o);
      }
    });
    $('examples').addEventListener('change', (e) => {
      if (e.target.value === '') return;
      this.example(Number(e.target.value));
      e.target.value = ''; // the list shows "Examples…" again; the queue line says what runs
    });

    $('camera-btn').addEventListener('click', () => this.startCamera());
    $('camera-close').addEventListener('click', () => this.stopCamera());
    $('capture-btn').addEventListener('click', () => this.capture());
    $('switch-btn').addEventListener('click', () => {
      this.facing = this.facing === 'environment' ? 'user' : 'environment';
      this.startCamera();
    });
    $('live').addEventListener('change', (e) => {
      clearInterval(this.liveTimer);
      // Live frames are a stream, not picks: one is taken only when the line is empty.
      this.liveTimer = e.target.checked ? setInterval(() => this.idle && this.capture(), 1000) : null;
    });
    document.addEventListener('visibilitychange', () => {
      if (document.hidden && this.stream) this.stopCamera('The camera was turned off while the page was in the background.');
    });
  }

  get idle() {
    return !this.current && !this.line.length;
  }

  // ---------------------------------------------------------------- the line
  /** Put a pick in line: {name, load: async () => decoded photo (+ truth, preview)}. */
  enqueue(job) {
    this.line.push(job);
    this.renderLine();
    this.pump();
    return job.done;
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    while (this.line.length) {
      const job = this.line.shift();
      this.current = job.name;
      this.renderLine();
      const res = await this.run(job);
      job.resolve?.(res);
    }
    this.current = null;
    this.running = false;
    this.renderLine();
  }

  renderLine() {
    const q = this.$('queue');
    const waiting = this.line.map((j) => j.name);
    if (!this.current) {
      q.hidden = true;
      q.textContent = '';
      return;
    }
    q.hidden = false;
    q.textContent = waiting.length
      ? `Locating ${this.current}… Waiting in line: ${waiting.join(', ')} (each will be answered in turn).`
      : `Locating ${this.current}…`;
    this.status.set('locate', waiting.length ? `Locating ${this.current}; ${waiting.length} more waiting` : `Locating ${this.current}…`);
  }

  job(name, load) {
    const j = { name, load };
    j.done = new Promise((ok) => (j.resolve = ok));
    return j;
  }

  /** Files from the picker, a drop or the clipboard: every one is answered or told why not. */
  files(list) {
    let last = null;
    for (const f of list) {
      const name = f.name || 'pasted photo';
      last = this.enqueue(
        this.job(name, async () => {
          const img = await this.app.read(f, name);
          return { img, blob: f, truth: img.gps?.lat != null ? { lat: img.gps.lat, lon: img.gps.lon, source: 'exif' } : null };
        }),
      );
    }
    return last;
  }

  /** Example `i` of the bundled (or --game) photos with known positions. */
  async example(i) {
    const e = (await this.app.examples)[i];
    if (!e) return null;
    return this.enqueue(
      this.job(`example ${i + 1}`, async () => {
        const r = await fetch(e.url);
        if (!r.ok) throw new PhotoError(`example ${i + 1} could not be loaded (HTTP ${r.status})`, 'fetch');
        const blob = await r.blob();
        const img = await this.app.read(blob, `example ${i + 1}`);
        return { img, blob, truth: { lat: e.lat, lon: e.lon, source: 'known' } };
      }),
    );
  }

  /** Locate one job; shows the answer or the failure. */
  async run(job) {
    try {
      const { img, blob, preview, truth } = await job.load();
      const r = await this.app.infer(img);
      const model = this.app.model;
      const res = summarize(r.probs, model.cells, { rule: this.app.rule, topK: 5 });
      Object.assign(res, {
        name: job.name,
        inferenceMs: r.inferenceMs,
        preprocessMs: r.preprocessMs,
        views: r.views,
        panorama: r.panorama,
        scaled: img.scaled,
        gps: img.gps?.lat != null ? { lat: img.gps.lat, lon: img.gps.lon } : null,
        truth,
        errorKm: truth ? haversineKm(res.lat, res.lon, truth.lat, truth.lon) : null,
        probs: Array.from(r.probs),
      });
      res.preview = preview ?? (blob && img.format !== 'heic' ? URL.createObjectURL(blob) : previewOf(img));
      this.show(res);
      this.app.last = res;
      this.app.timings.firstAnswer ??= performance.now();
      this.remember(res);
      bump('answers');
      return res;
    } catch (e) {
      const msg = e instanceof PhotoError ? e.message : `${job.name}: ${e.message}`;
      this.fail(msg);
      this.remember({ name: job.name, error: msg });
      this.app.lastError = msg;
      bump('errors');
      return null;
    } finally {
      bump('handled');
    }
  }

  show(res) {
    const $ = this.$;
    const d = describe(res);
    $('locate-error').hidden = true;
    $('card').hidden = false;
    $('answer').textContent = d.headline;
    $('details').textContent = d.details.join(' · ');
    $('notes').replaceChildren(...d.notes.map((n) => Object.assign(document.createElement('li'), { textContent: n })));
    $('result').hidden = false;
    const old = $('preview').src;
    $('preview').src = res.preview;
    if (old.startsWith('blob:') && old !== res.preview && !this.history.some((h) => h.preview === old)) URL.revokeObjectURL(old);
    const inGuess = res.top.findIndex((t) => t.cell === res.cell || this.app.model.cells.chain[t.cell].includes(res.cell));
    $('top').replaceChildren(
      ...res.top.map((t, k) => {
        const li = document.createElement('li');
        li.textContent = `${t.place || t.token} — ${fmtPct(t.probability)}${k === inGuess ? ' (holds the guess)' : ''}`;
        return li;
      }),
    );
    const m = this.map;
    m.clear();
    m.cells(this.app.model.cells, res.top);
    m.marker(res.lat, res.lon, 'guess', { text: d.headline, tip: `guess: ${d.headline}` });
    const pts = [[res.lat, res.lon], ...res.top.slice(0, 3).map((t) => [t.lat, t.lon])];
    if (res.truth) {
      m.marker(res.truth.lat, res.truth.lon, 'truth', { tip: `true position (${res.truth.source === 'exif' ? 'EXIF' : 'known'}): ${fmtKm(res.errorKm)} from the guess` });
      m.line([res.lat, res.lon], [res.truth.lat, res.truth.lon]);
      pts.push([res.truth.lat, res.truth.lon]);
    }
    m.fit(pts);
    this.status.set('locate', `${res.name}: ${d.headline} (${d.details.join(', ')})`, 'ok');
  }

  /** A failure replaces the previous answer: the card, the list and the map are cleared. */
  fail(msg) {
    const $ = this.$;
    $('card').hidden = true;
    $('result').hidden = true;
    $('locate-error').hidden = false;
    $('locate-error').textContent = msg;
    this.map.clear();
    this.map.home();
    this.status.set('locate', msg, 'error');
  }

  remember(entry) {
    this.history.unshift(entry);
    const gone = this.history.splice(HISTORY);
    for (const g of gone) if (g.preview?.startsWith('blob:') && g.preview !== this.$('preview').src) URL.revokeObjectURL(g.preview);
    const $ = this.$;
    $('history').hidden = this.history.length < 2;
    $('history-list').replaceChildren(
      ...this.history.slice(1).map((h) => {
        const li = document.createElement('li');
        if (h.error) {
          li.textContent = h.error;
          li.className = 'failed';
          return li;
        }
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'show';
        b.addEventListener('click', () => this.show(h));
        const d = describe(h);
        li.append(`${h.name}: ${d.headline}${h.truth ? ` (${fmtKm(h.errorKm)} off)` : ''} `, b);
        return li;
      }),
    );
  }

  // ---------------------------------------------------------------- camera
  async startCamera() {
    this.stopCamera();
    const $ = this.$;
    if (!navigator.mediaDevices?.getUserMedia) {
      this.fail('No camera here: browsers give the camera only to pages opened over https:// (or on this computer). See “On a phone” in the README, or pick a photo.');
      return;
    }
    const ask = (video) => navigator.mediaDevices.getUserMedia({ video, audio: false });
    try {
      try {
        this.stream = await ask({ facingMode: { ideal: this.facing }, width: { ideal: 1280 }, height: { ideal: 960 } });
      } catch (e) {
        // Some browsers (WebKit) refuse the size hints where no camera fits them: ask plainly.
        if (e.name !== 'OverconstrainedError' && e.name !== 'TypeError') throw e;
        this.stream = await ask(true);
      }
    } catch (e) {
      const why = {
        NotFoundError: 'No camera found on this device; pick a photo instead.',
        OverconstrainedError: 'No camera found on this device; pick a photo instead.',
        NotAllowedError: 'The camera was not allowed. Allow it in the browser’s site settings, or pick a photo.',
        NotReadableError: 'The camera is busy (another app is using it); close that app and try again.',
        SecurityError: 'This page may not use the camera (it must be opened over https://).',
      }[e.name];
      this.fail(why ?? `The camera could not start (${e.message}); pick a photo instead.`);
      return;
    }
    $('video').srcObject = this.stream;
    $('camera').hidden = false;
    this.status.set('locate', 'Camera on: point it at the street and press Capture.', 'ok');
    await $('video').play().catch(() => {});
    $('capture-btn').scrollIntoView({ block: 'nearest' });
  }

  stopCamera(reason = '') {
    clearInterval(this.liveTimer);
    this.liveTimer = null;
    this.$('live').checked = false;
    const had = !!this.stream;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.$('video').srcObject = null;
    this.$('camera').hidden = true;
    if (had && reason) this.status.set('locate', reason);
  }

  /** Take the current frame and put it in line. */
  capture() {
    const v = this.$('video');
    let img;
    try {
      img = grabFrame(v);
    } catch (e) {
      this.fail(e.message);
      return Promise.resolve(null);
    }
    const preview = previewOf(img, v);
    const n = (this.shots = (this.shots ?? 0) + 1);
    return this.enqueue(this.job(`camera photo ${n}`, async () => ({ img, preview, truth: null })));
  }

  enter() {}

  leave() {
    if (this.stream) this.stopCamera('The camera was turned off when you left Locate.');
  }
}

function isPano(e) {
  return e.projection === 'equirectangular' || e.projection === 'spherical';
}

function bump(key) {
  document.body.dataset[key] = String(Number(document.body.dataset[key] ?? 0) + 1);
}

/** A small JPEG of decoded pixels (or of a video frame) for the preview. */
function previewOf(img, source = null) {
  const scale = Math.min(1, 800 / Math.max(img.width, img.height));
  const c = document.createElement('canvas');
  c.width = Math.round(img.width * scale);
  c.height = Math.round(img.height * scale);
  const ctx = c.getContext('2d');
  if (source) ctx.drawImage(source, 0, 0, c.width, c.height);
  else {
    // Sampled straight from the pixels: a 48 MP photo never goes through a full-size canvas.
    const small = new ImageData(c.width, c.height);
    for (let y = 0; y < c.height; y++) {
      const sy = Math.min(img.height - 1, Math.floor((y + 0.5) / scale));
      for (let x = 0; x < c.width; x++) {
        const sx = Math.min(img.width - 1, Math.floor((x + 0.5) / scale));
        const i = (y * c.width + x) * 4;
        const j = (sy * img.width + sx) * 3;
        small.data[i] = img.rgb[j];
        small.data[i + 1] = img.rgb[j + 1];
        small.data[i + 2] = img.rgb[j + 2];
        small.data[i + 3] = 255;
      }
    }
    ctx.putImageData(small, 0, 0);
  }
  return c.toDataURL('image/jpeg', 0.85);
}
