// The model's preprocessing (img2loc.inference.preprocess + images.py) on RGB pixels, with
// Pillow's integer arithmetic, so the browser feeds the model the same numbers as Python:
// JPEG draft scale (approximated by a box reduction), Image.reduce, then Image.resize with
// the separable antialiased filter, centre crop, /255, (x - mean) / std, channels first.
// Pure functions: they run in Node for the parity tests.

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

const FILTERS = {
  box: {
    support: 0.5,
    fn(x) {
      return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
    },
  },
  bicubic: {
    support: 2.0,
    fn(x) {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0.0;
    },
  },
  bilinear: {
    support: 1.0,
    fn(x) {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  lanczos: {
    support: 3.0,
    fn(x) {
      const sinc = (t) => (t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t));
      return x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  },
};

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output pixel [xmin, weights]. */
function coefficients(inSize, outSize, filter) {
  const scale = inSize / outSize;
  const filterscale = Math.max(1.0, scale);
  const support = filter.support * filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    const k = new Float64Array(xmax);
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = filter.fn((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    const ik = new Int32Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? k[x] / ww : k[x];
      ik[x] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
    }
    out.push([xmin, ik]);
  }
  return out;
}

function clip8(v) {
  if (v <= 0) return 0;
  const r = Math.floor(v / ONE);
  return r > 255 ? 255 : r;
}

/** Resize an RGB image (Uint8Array, 3 bytes per pixel) exactly like Pillow's Image.resize. */
export function resize(src, w, h, nw, nh, interpolation = 'bicubic') {
  if (nw === w && nh === h) return src.slice();
  const filter = FILTERS[interpolation];
  if (!filter) throw new Error(`interpolation ${interpolation} is not supported in the browser`);
  let cur = src;
  let cw = w;
  if (nw !== w) {
    const cs = coefficients(w, nw, filter);
    const out = new Uint8Array(nw * h * 3);
    const half = ONE / 2;
    for (let y = 0; y < h; y++) {
      const row = y * w * 3;
      for (let xx = 0; xx < nw; xx++) {
        const [xmin, k] = cs[xx];
        let s0 = half;
        let s1 = half;
        let s2 = half;
        for (let x = 0; x < k.length; x++) {
          const p = row + (x + xmin) * 3;
          s0 += src[p] * k[x];
          s1 += src[p + 1] * k[x];
          s2 += src[p + 2] * k[x];
        }
        const o = (y * nw + xx) * 3;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
      }
    }
    cur = out;
    cw = nw;
  }
  if (nh === h) return cur;
  const cs = coefficients(h, nh, filter);
  const out = new Uint8Array(cw * nh * 3);
  const half = ONE / 2;
  for (let yy = 0; yy < nh; yy++) {
    const [ymin, k] = cs[yy];
    for (let x = 0; x < cw; x++) {
      let s0 = half;
      let s1 = half;
      let s2 = half;
      for (let y = 0; y < k.length; y++) {
        const p = ((y + ymin) * cw + x) * 3;
        s0 += cur[p] * k[y];
        s1 += cur[p + 1] * k[y];
        s2 += cur[p + 2] * k[y];
      }
      const o = (yy * cw + x) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

function reduceMultiplier(n) {
  // Pillow's division_UINT32(n, 8), computed in single precision as in C.
  return Math.trunc(Math.fround(Math.fround(4294967296) / Math.fround(256 * n)));
}

/** Pillow's Image.reduce(k): k x k box averages, partial boxes at the right and bottom edges. */
export function reduce(src, w, h, k) {
  if (k <= 1) return { data: src, width: w, height: h };
  const nw = Math.ceil(w / k);
  const nh = Math.ceil(h / k);
  const out = new Uint8Array(nw * nh * 3);
  for (let oy = 0; oy < nh; oy++) {
    const y0 = oy * k;
    const y1 = Math.min(h, y0 + k);
    for (let ox = 0; ox < nw; ox++) {
      const x0 = ox * k;
      const x1 = Math.min(w, x0 + k);
      const n = (y1 - y0) * (x1 - x0);
      const amend = Math.floor(n / 2);
      let s0 = amend;
      let s1 = amend;
      let s2 = amend;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const p = (y * w + x) * 3;
          s0 += src[p];
          s1 += src[p + 1];
          s2 += src[p + 2];
        }
      }
      const m = reduceMultiplier(n);
      const o = (oy * nw + ox) * 3;
      out[o] = Math.floor((s0 * m) / 16777216);
      out[o + 1] = Math.floor((s1 * m) / 16777216);
      out[o + 2] = Math.floor((s2 * m) / 16777216);
    }
  }
  return { data: out, width: nw, height: nh };
}

/** The scale (1, 2, 4 or 8) at which Pillow's JPEG draft mode decodes for a requested size. */
export function jpegDraftScale(w, h, size) {
  const scale = Math.min(Math.floor(w / size), Math.floor(h / size));
  for (const sc of [8, 4, 2]) if (scale >= sc) return sc;
  return 1;
}

/** Python's round(): halves go to the even neighbour. */
export function pyRound(x) {
  const f = Math.floor(x);
  const d = x - f;
  if (d === 0.5) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/**
 * RGB pixels -> model input: Float32Array (3 * S * S), channels first, as Python's
 * `load_input` computes it. `isJpeg` applies draft mode's reduction.
 */
export function preprocessRgb(rgb, w, h, cfg, { isJpeg = false } = {}) {
  let img = { data: rgb, width: w, height: h };
  const size = cfg.resize_size;
  if (isJpeg) {
    // Pillow decodes big JPEGs at 1/2, 1/4 or 1/8 scale (DCT scaling); a box reduction of
    // the full decode is the closest a browser gets.
    img = reduce(img.data, img.width, img.height, jpegDraftScale(img.width, img.height, size));
  }
  const k = Math.floor(Math.min(img.width, img.height) / size);
  if (k >= 2) img = reduce(img.data, img.width, img.height, k);
  const S = cfg.input_size;
  let px;
  if (cfg.crop === 'none') {
    px = resize(img.data, img.width, img.height, S, S, cfg.interpolation);
  } else {
    const s = size / Math.min(img.width, img.height);
    const nw = Math.max(S, pyRound(img.width * s));
    const nh = Math.max(S, pyRound(img.height * s));
    const r = resize(img.data, img.width, img.height, nw, nh, cfg.interpolation);
    const left = Math.floor((nw - S) / 2);
    const top = Math.floor((nh - S) / 2);
    px = new Uint8Array(S * S * 3);
    for (let y = 0; y < S; y++) px.set(r.subarray(((top + y) * nw + left) * 3, ((top + y) * nw + left + S) * 3), y * S * 3);
  }
  return normalize(px, S, cfg);
}

/** [0, 1] scaling and (x - mean) / std in float32 steps, channels first. */
export function normalize(px, S, cfg) {
  const f = Math.fround;
  const inv = f(1.0 / 255.0);
  const mean = cfg.mean.map(f);
  const std = cfg.std.map(f);
  const out = new Float32Array(3 * S * S);
  const plane = S * S;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      out[c * plane + i] = f(f(f(px[i * 3 + c] * inv) - mean[c]) / std[c]);
    }
  }
  return out;
}

/** RGBA (canvas ImageData) -> RGB with transparency composited on white, as Pillow's to_rgb. */
export function rgbaToRgb(rgba, hasAlpha = true) {
  const n = rgba.length / 4;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = hasAlpha ? rgba[i * 4 + 3] : 255;
    for (let c = 0; c < 3; c++) {
      const v = rgba[i * 4 + c];
      if (a === 255) out[i * 3 + c] = v;
      else {
        const t = 255 * (255 - a) + v * a + 128; // Pillow's DIV255 blend
        out[i * 3 + c] = ((t >> 8) + t) >> 8;
      }
    }
  }
  return out;
}
