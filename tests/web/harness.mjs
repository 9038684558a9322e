// Runs the web app's pure modules in Node for the Python parity tests.
// stdin: JSON {op, ...}; stdout: JSON result.
import { readFileSync } from 'node:fs';
import { Cells, decodeHierarchical, decodeScore, summarize } from '../../web/src/decode.js';
import { leafId, parentId, toToken } from '../../web/src/s2.js';
import { preprocessRgb, reduce, resize } from '../../web/src/preprocess.js';
import { combineViews, modelInputs } from '../../web/src/inputs.js';
import { detectPanorama, renderView } from '../../web/src/panorama.js';
import { readGps } from '../../web/src/exif.js';
import { imageSize, jpegComplete, sniffFormat } from '../../web/src/sniff.js';
import { spreadRounds } from '../../web/src/game.js';

const req = JSON.parse(readFileSync(0, 'utf8'));
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const out = [];
if (req.op === 'resize') {
  for (const c of req.cases) {
    const r = c.k ? reduce(b64(c.data), c.w, c.h, c.k).data : resize(b64(c.data), c.w, c.h, c.nw, c.nh, c.interpolation);
    out.push(Buffer.from(r).toString('base64'));
  }
} else if (req.op === 'preprocess') {
  for (const c of req.cases) {
    const x = preprocessRgb(b64(c.data), c.w, c.h, req.cfg, { isJpeg: c.jpeg });
    out.push(Buffer.from(x.buffer).toString('base64'));
  }
} else if (req.op === 'decode') {
  const cells = new Cells(JSON.parse(readFileSync(req.cells, 'utf8')));
  for (const p of req.probs) {
    const h = decodeHierarchical(p, cells);
    const s = decodeScore(p, cells);
    const sm = summarize(p, cells, { topK: 5 });
    out.push({ hierarchical: h, score: s, confidence: sm.confidence, top: sm.top.map((t) => [t.token, t.probability]), inDomain: sm.inDomain, fallback: sm.fallback });
  }
} else if (req.op === 'combine') {
  // Views of one place combined as the app combines a panorama's views.
  out.push(...combineViews(req.views.map((v) => Float32Array.from(v)), req.n));
} else if (req.op === 'render') {
  // Raw views of a panorama (render_views), for bit-for-bit checks.
  for (const c of req.cases) {
    const views = c.headings.map((hd) => renderView(b64(c.data), c.w, c.h, hd, c.fov, c.size));
    out.push(views.map((v) => Buffer.from(v).toString('base64')));
  }
} else if (req.op === 'inputs') {
  // Model inputs of decoded photos (load_input): panorama detection, views, preprocessing.
  for (const c of req.cases) {
    const head = c.file ? new Uint8Array(readFileSync(c.file)).subarray(0, 1 << 17) : null;
    const r = modelInputs(b64(c.data), c.w, c.h, req.cfg, { isJpeg: c.jpeg, head });
    const all = new Float32Array(r.inputs.length * r.inputs[0].length);
    r.inputs.forEach((x, i) => all.set(x, i * x.length));
    out.push({ panorama: r.panorama, headings: r.headings, n: r.inputs.length, x: Buffer.from(all.buffer).toString('base64') });
  }
} else if (req.op === 'detect') {
  for (const c of req.cases) {
    const head = c.file ? new Uint8Array(readFileSync(c.file)).subarray(0, 1 << 17) : null;
    out.push(detectPanorama(b64(c.data), c.w, c.h, head));
  }
} else if (req.op === 'gps') {
  for (const f of req.files) out.push(readGps(new Uint8Array(readFileSync(f))));
} else if (req.op === 'sniff') {
  for (const f of req.files) {
    const b = new Uint8Array(readFileSync(f));
    const format = sniffFormat(b);
    out.push({ format, size: imageSize(b, format), complete: format === 'jpeg' ? jpegComplete(b) : null });
  }
} else if (req.op === 'spread') {
  // Seeded rounds of the game (mulberry32), for the spread-over-places check.
  let a = req.seed + 1;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  out.push(...spreadRounds(req.photos, req.n, rnd));
} else if (req.op === 's2') {
  for (const [lat, lon, level] of req.points) out.push(toToken(parentId(leafId(lat, lon), level)));
}
process.stdout.write(JSON.stringify(out));
