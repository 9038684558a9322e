// Runs the web app's pure modules in Node for the Python parity tests.
// stdin: JSON {op, ...}; stdout: JSON result.
import { readFileSync } from 'node:fs';
import { Cells, decodeHierarchical, decodeScore, summarize } from '../../web/src/decode.js';
import { leafId, parentId, toToken } from '../../web/src/s2.js';
import { preprocessRgb, reduce, resize } from '../../web/src/preprocess.js';

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
    out.push({ hierarchical: h, score: s, confidence: sm.confidence, top: sm.top.map((t) => [t.token, t.probability]) });
  }
} else if (req.op === 's2') {
  for (const [lat, lon, level] of req.points) out.push(toToken(parentId(leafId(lat, lon), level)));
}
process.stdout.write(JSON.stringify(out));
