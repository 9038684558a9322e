// Decoding rules of img2loc.geo.decode, with the same arithmetic: `hierarchical`
// (leaf maximising the product of its chain's probabilities) and `score` (the
// GeoGuessr score-optimal guess). Pure functions: they run in Node for the parity tests.
// A row may carry one value more than there are cells: the in-domain weight w of a model
// exported with a fallback; the leaf distribution is then w * model + (1 - w) * prior, the
// cells' photo prior (the fallback of img2loc.geo.decode).
import { leafId, parentId, toToken } from './s2.js';

export const EARTH_RADIUS_KM = 6371.0088;
export const WORLD_MAP_SIZE_KM = 14927.0;
export const SCORE_TOP_LEAVES = 24;
export const SCORE_RING_KM = [400.0, 200.0, 100.0, 50.0, 25.0];
/** Below this in-domain weight an answer is a fallback (img2loc.geo.decode.FALLBACK_BELOW). */
export const FALLBACK_BELOW = 0.5;
const EPS = 1e-12;
const RAD = Math.PI / 180.0;
const DEG = 180.0 / Math.PI;

/** The cells of a model (cells.json), in output order, with each cell's chain of ancestors. */
export class Cells {
  constructor(doc) {
    if (!doc || doc.format !== 'img2loc-cellset' || !Array.isArray(doc.cells)) {
      throw new Error('cells.json is not an img2loc cell set; re-export the model');
    }
    const cells = doc.cells;
    this.n = cells.length;
    this.tokens = cells.map((c) => c.token);
    this.lat = Float64Array.from(cells, (c) => c.lat);
    this.lon = Float64Array.from(cells, (c) => c.lon);
    this.level = Int32Array.from(cells, (c) => c.level);
    this.place = cells.map((c) => c.place ?? '');
    this.polygon = cells.map((c) => c.polygon ?? null);
    this.index = new Map(this.tokens.map((t, i) => [t, i]));
    this.parent = Int32Array.from(cells, (c) => (c.parent == null ? -1 : this.index.get(c.parent) ?? -1));
    const hasChild = new Uint8Array(this.n);
    for (const p of this.parent) if (p >= 0) hasChild[p] = 1;
    // chain[i] = [i, parent, grandparent, ...]
    this.chain = Array.from({ length: this.n }, (_, i) => {
      const out = [];
      for (let c = i; c >= 0; c = this.parent[c]) out.push(c);
      return out;
    });
    this.leaves = Int32Array.from([...Array(this.n).keys()].filter((i) => !hasChild[i]));
    this.levels = [...new Set(this.level)].sort((a, b) => a - b);
    // The photo prior over the leaves (sums to 1), or null when cells.json carries none.
    this.prior = null;
    if (cells.length && cells.every((c) => typeof c.prior === 'number')) {
      const q = Float64Array.from(this.leaves, (c) => cells[c].prior);
      const tot = q.reduce((a, b) => a + b, 0);
      if (tot > 0) this.prior = q.map((v) => v / tot);
    }
  }

  /** Finest cell holding a point, else the leaf whose centre is nearest (CellSet.nearest). */
  nearest(lat, lon) {
    const leaf = leafId(lat, lon);
    for (let k = this.levels.length - 1; k >= 0; k--) {
      const i = this.index.get(toToken(parentId(leaf, this.levels[k])));
      if (i !== undefined) return i;
    }
    let best = -1;
    let bd = Infinity;
    for (const c of this.leaves) {
      const d = haversineKm(lat, lon, this.lat[c], this.lon[c]);
      if (d < bd) {
        bd = d;
        best = c;
      }
    }
    return best;
  }
}

/** Great-circle distance (km) on the mean-radius sphere, as img2loc.geo.distance.haversine_km. */
export function haversineKm(lat1, lon1, lat2, lon2) {
  const p1 = lat1 * RAD;
  const p2 = lat2 * RAD;
  const dphi = p2 - p1;
  const dlmb = (lon2 - lon1) * RAD;
  let a = Math.sin(dphi / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin(dlmb / 2) ** 2;
  a = Math.min(1, Math.max(0, a));
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.sqrt(a));
}

/** GeoGuessr's points for a guess `km` away: 5000 exp(-10 d / D). */
export function geoguessrScore(km, mapSizeKm = WORLD_MAP_SIZE_KM) {
  return 5000.0 * Math.exp((-10.0 * km) / mapSizeKm);
}

/** The in-domain weight of a row (null when the model gives none or the cells have no prior). */
export function inDomain(probs, cells) {
  if (probs.length !== cells.n && probs.length !== cells.n + 1) {
    throw new Error(`model gives ${probs.length} probabilities but cells.json has ${cells.n} cells`);
  }
  if (probs.length === cells.n || cells.prior === null) return null;
  return Math.min(1, Math.max(0, probs[cells.n]));
}

/** Sum of log-probabilities along each leaf's chain (Float64Array over cells.leaves). */
export function leafLogScores(probs, cells) {
  inDomain(probs, cells); // checks the length
  const logp = Float64Array.from(probs.slice(0, cells.n), (p) => Math.log(Math.min(1, Math.max(EPS, p))));
  return Float64Array.from(cells.leaves, (c) => {
    let s = 0;
    for (const a of cells.chain[c]) s += logp[a];
    return s;
  });
}

/** Leaf of the hierarchical rule: {cell, lat, lon}. */
export function decodeHierarchical(probs, cells) {
  const s = inDomain(probs, cells) === null ? leafLogScores(probs, cells) : leafDistribution(probs, cells);
  let best = 0;
  for (let k = 1; k < s.length; k++) if (s[k] > s[best]) best = k;
  const c = cells.leaves[best];
  return { cell: c, lat: cells.lat[c], lon: cells.lon[c] };
}

/** Normalised distribution over cells.leaves from chain products. */
export function leafDistribution(probs, cells) {
  const s = leafLogScores(probs, cells);
  let m = -Infinity;
  for (const v of s) if (v > m) m = v;
  const w = Float64Array.from(s, (v) => Math.exp(v - m));
  let tot = 0;
  for (const v of w) tot += v;
  const keep = inDomain(probs, cells);
  if (keep === null) return w.map((v) => v / tot);
  return w.map((v, j) => (keep * v) / tot + (1 - keep) * cells.prior[j]);
}

/** Indices into `dist`, largest first, ties by index (numpy's stable argsort of -dist). */
export function argsortDesc(dist, k = dist.length) {
  const idx = [...dist.keys()];
  idx.sort((a, b) => dist[b] - dist[a] || a - b);
  return idx.slice(0, k);
}

/** Expected score of a guess when weight w[j] of the mass sits at (tlat[j], tlon[j]). */
export function expectedScore(lat, lon, w, tlat, tlon, mapSizeKm = WORLD_MAP_SIZE_KM) {
  let s = 0;
  for (let j = 0; j < w.length; j++) {
    const d = haversineKm(lat, lon, tlat[j], tlon[j]);
    s += 5000.0 * Math.exp((-10.0 * d) / mapSizeKm) * w[j];
  }
  return s;
}

function destination(lat, lon, bearingDeg, km) {
  const d = km / EARTH_RADIUS_KM;
  const b = bearingDeg * RAD;
  const p1 = lat * RAD;
  const l1 = lon * RAD;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  const x = l2 * DEG + 540.0;
  return [p2 * DEG, (((x % 360.0) + 360.0) % 360.0) - 180.0];
}

function toXyz(lat, lon) {
  const la = lat * RAD;
  const lo = lon * RAD;
  return [Math.cos(la) * Math.cos(lo), Math.cos(la) * Math.sin(lo), Math.sin(la)];
}

/**
 * The guess maximising the expected GeoGuessr score (img2loc.geo.decode.score_optimal):
 * candidates are the top leaves' centres and the midpoints of all pairs, then the best is
 * refined on shrinking rings in 8 directions. Returns {lat, lon, expected}.
 */
export function scoreOptimal(probs, cells, mapSizeKm = WORLD_MAP_SIZE_KM, topLeaves = SCORE_TOP_LEAVES) {
  const dist = leafDistribution(probs, cells);
  return scoreOptimalFromDistribution(dist, cells, mapSizeKm, topLeaves);
}

/** scoreOptimal for a leaf distribution (e.g. the mean of several views). */
export function scoreOptimalFromDistribution(dist, cells, mapSizeKm = WORLD_MAP_SIZE_KM, topLeaves = SCORE_TOP_LEAVES) {
  const m = Math.min(topLeaves, cells.leaves.length);
  const top = argsortDesc(dist, m);
  const w = top.map((j) => dist[j]);
  const tlat = top.map((j) => cells.lat[cells.leaves[j]]);
  const tlon = top.map((j) => cells.lon[cells.leaves[j]]);
  const cand = tlat.map((la, k) => [la, tlon[k]]);
  const xyz = tlat.map((la, k) => toXyz(la, tlon[k]));
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      const v = [xyz[i][0] + xyz[j][0], xyz[i][1] + xyz[j][1], xyz[i][2] + xyz[j][2]];
      const norm = Math.hypot(v[0], v[1], v[2]);
      if (norm < 1e-6) {
        cand.push([tlat[i], tlon[i]]); // antipodal pair: no midpoint
        continue;
      }
      const n = Math.max(norm, EPS);
      const [x, y, z] = [v[0] / n, v[1] / n, v[2] / n];
      cand.push([Math.atan2(z, Math.hypot(x, y)) * DEG, Math.atan2(y, x) * DEG]);
    }
  }
  let best = null;
  for (const [la, lo] of cand) {
    const e = expectedScore(la, lo, w, tlat, tlon, mapSizeKm);
    if (best === null || e > best[2]) best = [la, lo, e];
  }
  for (const km of SCORE_RING_KM) {
    let next = best;
    for (let k = 0; k < 8; k++) {
      const [la, lo] = destination(best[0], best[1], 45.0 * k, km);
      const e = expectedScore(la, lo, w, tlat, tlon, mapSizeKm);
      if (e > next[2]) next = [la, lo, e]; // staying put wins ties
    }
    best = next;
  }
  return { lat: best[0], lon: best[1], expected: best[2] };
}

/** Score-optimal guess and the finest cell holding it: {cell, lat, lon, expected}. */
export function decodeScore(probs, cells, mapSizeKm = WORLD_MAP_SIZE_KM) {
  const g = scoreOptimal(probs, cells, mapSizeKm);
  return { cell: cells.nearest(g.lat, g.lon), ...g };
}

/** Decode with a rule by name ('hierarchical' or 'score'). */
export function decode(probs, cells, rule = 'hierarchical') {
  if (rule === 'hierarchical') return decodeHierarchical(probs, cells);
  if (rule === 'score') return decodeScore(probs, cells);
  throw new Error(`unknown decoding rule ${rule}; choose hierarchical or score`);
}

/**
 * Element-wise mean of several probability vectors (multi-view); with `nCells` and rows of
 * nCells + 1 values, the last (the in-domain weight) is the views' largest
 * (img2loc.geo.views.combine_views).
 */
export function meanProbs(list, nCells = null) {
  const out = new Float64Array(list[0].length);
  for (const p of list) for (let i = 0; i < out.length; i++) out[i] += p[i];
  const res = out.map((v) => v / list.length);
  if (nCells !== null && res.length === nCells + 1) res[nCells] = Math.max(...list.map((p) => p[nCells]));
  return res;
}

/**
 * Summary of one prediction: the decoded guess, the confidence (mass of leaves inside the
 * guessed cell), and the top-k leaves with their probabilities.
 */
export function summarize(probs, cells, { rule = 'hierarchical', topK = 5 } = {}) {
  const g = decode(probs, cells, rule);
  const dist = leafDistribution(probs, cells);
  let conf = 0;
  for (let j = 0; j < dist.length; j++) if (cells.chain[cells.leaves[j]].includes(g.cell)) conf += dist[j];
  const top = argsortDesc(dist, Math.min(topK, dist.length)).map((j) => {
    const c = cells.leaves[j];
    return { cell: c, token: cells.tokens[c], lat: cells.lat[c], lon: cells.lon[c], probability: dist[j], place: cells.place[c] };
  });
  const keep = inDomain(probs, cells);
  const fallback = keep !== null && keep < FALLBACK_BELOW;
  return { ...g, token: cells.tokens[g.cell], place: cells.place[g.cell], confidence: conf, top, dist, inDomain: keep, fallback };
}
