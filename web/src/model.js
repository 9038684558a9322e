// Loads a model folder (preprocess.json, cells.json, model.browser.onnx or model.onnx) and
// runs it with onnxruntime-web's multi-threaded WebAssembly backend.
import * as ort from 'onnxruntime-web/wasm';
import { Cells } from './decode.js';

async function fetchOk(url, what) {
  let r;
  try {
    r = await fetch(url);
  } catch (e) {
    throw new Error(`cannot fetch ${what} (${url}): ${e.message}`);
  }
  if (!r.ok) throw new Error(`${what} not found at ${url} (HTTP ${r.status}); start the app with \`img2loc serve --model DIR\``);
  return r;
}

export class Model {
  constructor(session, pre, cells, file) {
    this.session = session;
    this.pre = pre;
    this.cells = cells;
    this.file = file;
    this.inputName = session.inputNames[0];
    this.outputName = session.outputNames.includes('probs') ? 'probs' : session.outputNames[0];
    // A model exported with a fallback also gives the in-domain weight (see decode.js).
    this.domainName = session.outputNames.includes('in_domain') ? 'in_domain' : null;
  }

  /** Load a model folder (URL ending in '/'). variant: 'auto' (browser model first) or 'fp32'. */
  static async load(base, { variant = 'auto', threads = 1 } = {}) {
    ort.env.wasm.wasmPaths = new URL('ort/', document.baseURI).href;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = false;
    const [pre, cellsDoc] = await Promise.all([
      fetchOk(`${base}preprocess.json`, 'preprocess.json').then((r) => r.json()),
      fetchOk(`${base}cells.json`, 'cells.json').then((r) => r.json()),
    ]);
    if ((pre.layout ?? 'NCHW') !== 'NCHW') throw new Error(`unsupported input layout ${pre.layout}; re-export the model`);
    const names = variant === 'fp32' ? ['model.onnx'] : ['model.browser.onnx', 'model.onnx'];
    let bytes = null;
    let file = null;
    for (const name of names) {
      const r = await fetch(`${base}${name}`);
      if (r.ok) {
        bytes = new Uint8Array(await r.arrayBuffer());
        file = name;
        break;
      }
    }
    if (!bytes) throw new Error(`no ${names.join(' or ')} in ${base}; is it a folder written by \`img2loc export\`?`);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    const m = new Model(session, pre, new Cells(cellsDoc), file);
    // What ONNX Runtime really uses: it falls back to 1 thread where the page is not
    // cross-origin isolated or the browser has no shared WebAssembly memory (and says so
    // only in the console), so the page reports this, not the number it asked for.
    m.threads = ort.env.wasm.numThreads;
    m.urls = [`${base}preprocess.json`, `${base}cells.json`, `${base}${file}`];
    return m;
  }

  /** Per-cell probabilities (Float32Array) of one preprocessed image (Float32Array 3*S*S). */
  async run(x) {
    return (await this.runBatch([x]))[0];
  }

  /** Per-cell probabilities of several preprocessed images, run as one batch (+ the weight). */
  async runBatch(xs) {
    const S = this.pre.input_size;
    const n = xs.length;
    let data = xs[0];
    if (n > 1) {
      data = new Float32Array(n * 3 * S * S);
      xs.forEach((x, i) => data.set(x, i * 3 * S * S));
    }
    const t = new ort.Tensor('float32', data, [n, 3, S, S]);
    const out = await this.session.run({ [this.inputName]: t });
    const probs = out[this.outputName].data;
    const keep = this.domainName ? out[this.domainName].data : null;
    t.dispose?.();
    const C = probs.length / n;
    if (!keep) return Array.from({ length: n }, (_, i) => probs.subarray(i * C, (i + 1) * C));
    return Array.from({ length: n }, (_, i) => {
      const row = new Float32Array(C + 1);
      row.set(probs.subarray(i * C, (i + 1) * C));
      row[C] = keep[i];
      return row;
    });
  }
}
