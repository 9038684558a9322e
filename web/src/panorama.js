// 360° equirectangular panoramas, as img2loc.inference.panorama answers them: detected by
// their XMP (GPano:ProjectionType) or, without it, by edges that meet without a seam; then
// rendered into perspective views (gnomonic projection, bilinear sampling in float32, as
// numpy computes it) that the model sees like ordinary photos. Pure functions: they run in
// Node for the parity tests.
import { reduce, resize, pyRound } from './preprocess.js';

export const DEFAULT_PANO_VIEWS = 4;
export const DEFAULT_FOV = 100.0;
export const ASPECT = 2.0;
export const ASPECT_TOL = 0.02;
export const SEAM_MAX = 1.32;
export const SEAM_MIN_TEXTURE = 2.0;

const XMP_HEADER = 'http://ns.adobe.com/xap/1.0/\0';
const PROJECTION = /ProjectionType\s*(?:=\s*["']|>)\s*([A-Za-z_-]+)/;
const RAD = Math.PI / 180.0;
const DEG = 180.0 / Math.PI;

/** The XMP packet of a JPEG (APP1 http://ns.adobe.com/xap/1.0/), or null. */
export function jpegXmp(b) {
  if (!(b[0] === 0xff && b[1] === 0xd8)) return null;
  let i = 2;
  const n = b.length;
  while (i + 4 <= n) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) {
      i += 1;
      continue;
    }
    if (m === 0x01 || m === 0xd8 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    if (m === 0xda || m === 0xd9) return null;
    const len = (b[i + 2] << 8) | b[i + 3];
    if (len < 2) return null;
    const seg = b.subarray(i + 4, Math.min(n, i + 2 + len));
    if (m === 0xe1 && seg.length >= XMP_HEADER.length && String.fromCharCode(...seg.subarray(0, XMP_HEADER.length)) === XMP_HEADER) {
      return new TextDecoder('utf-8').decode(seg.subarray(XMP_HEADER.length));
    }
    i += 2 + len;
  }
  return null;
}

/** GPano:ProjectionType of an XMP packet, lower case, or null. */
export function xmpProjection(xmp) {
  if (xmp == null) return null;
  const m = PROJECTION.exec(xmp);
  return m ? m[1].toLowerCase() : null;
}

export function isEquirectangularSize(w, h) {
  return h > 0 && Math.abs(w / h - ASPECT) <= ASPECT * ASPECT_TOL;
}

/** (seam ratio, texture) of an RGB image: see img2loc.inference.panorama.seam_ratio. */
export function seamRatio(rgb, w, h) {
  const y0 = h >= 8 ? Math.floor(h / 8) : 0;
  const y1 = h >= 8 ? h - Math.floor(h / 8) : h;
  const rows = y1 - y0;
  let wrap = 0;
  let e0 = 0;
  let e1 = 0;
  let tex = 0;
  for (let y = y0; y < y1; y++) {
    const r = y * w * 3;
    for (let c = 0; c < 3; c++) {
      wrap += Math.abs(rgb[r + c] - rgb[r + (w - 1) * 3 + c]);
      e0 += Math.abs(rgb[r + c] - rgb[r + 3 + c]);
      e1 += Math.abs(rgb[r + (w - 1) * 3 + c] - rgb[r + (w - 2) * 3 + c]);
    }
    for (let i = r + 3, end = r + w * 3; i < end; i++) tex += Math.abs(rgb[i] - rgb[i - 3]);
  }
  const n = rows * 3;
  const edge = (e0 / n + e1 / n) / 2;
  return { ratio: wrap / n / (edge + 1.0), texture: tex / (rows * (w - 1) * 3) };
}

/** 'xmp' or 'seam' when an RGB image is a 360° panorama, else null (detect_panorama). */
export function detectPanorama(rgb, w, h, head = null) {
  if (!isEquirectangularSize(w, h)) return null;
  const proj = xmpProjection(head ? jpegXmp(head) : null);
  if (proj === 'equirectangular') return 'xmp';
  if (proj !== null) return null;
  const k = Math.floor(w / 512);
  const small = k >= 2 ? reduce(rgb, w, h, k) : { data: rgb, width: w, height: h };
  const { ratio, texture } = seamRatio(small.data, small.width, small.height);
  return ratio <= SEAM_MAX && texture >= SEAM_MIN_TEXTURE ? 'seam' : null;
}

export function viewHeadings(n, start = 0.0) {
  if (n < 1) throw new Error(`need at least one view, got ${n}`);
  return Array.from({ length: n }, (_, k) => (((start + (360.0 * k) / n) % 360.0) + 360.0) % 360.0);
}

/** Panorama width whose pixels match the centre pixels of a `size`-wide view. */
export function panoWidthFor(size, fovDeg = DEFAULT_FOV) {
  return Math.max(8, Math.ceil((Math.PI * size) / Math.tan((fovDeg * RAD) / 2)));
}

const angleCache = new Map();
/** {elev, dlon} (degrees, Float64Array size*size) of a view looking at heading 0, pitch 0. */
export function viewAngles(width, height, fovDeg) {
  const key = `${width}x${height}@${fovDeg}`;
  let a = angleCache.get(key);
  if (a) return a;
  if (!(fovDeg > 0 && fovDeg < 180)) throw new Error(`field of view must be in (0, 180) degrees, got ${fovDeg}`);
  const f = width / 2 / Math.tan((fovDeg * RAD) / 2);
  const elev = new Float64Array(width * height);
  const dlon = new Float64Array(width * height);
  for (let r = 0; r < height; r++) {
    const y = -(r + 0.5 - height / 2);
    for (let c = 0; c < width; c++) {
      const x = c + 0.5 - width / 2;
      elev[r * width + c] = Math.atan2(y, Math.hypot(x, f)) * DEG;
      dlon[r * width + c] = Math.atan2(x, f) * DEG;
    }
  }
  a = { elev, dlon };
  if (angleCache.size > 8) angleCache.clear();
  angleCache.set(key, a);
  return a;
}

const f32 = Math.fround;
/** numpy's rint: halves to even. */
function rint(x) {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * One perspective view (Uint8Array, width*height*3) of an RGB panorama (pw x ph) at a heading,
 * as render_views: bilinear, wrapping around horizontally, clamped at the poles, float32
 * arithmetic and round-half-even as numpy does it. `out` may be reused (the game's viewer).
 */
export function renderView(pano, pw, ph, heading, fovDeg = DEFAULT_FOV, width = 256, height = width, out = null) {
  const { elev, dlon } = viewAngles(width, height, fovDeg);
  const dst = out ?? new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const u = ((dlon[p] + heading) / 360.0 + 0.5) * pw - 0.5;
    let v = (0.5 - elev[p] / 180.0) * ph - 0.5;
    v = Math.min(Math.max(v, 0.0), ph - 1.0);
    const u0 = Math.floor(u);
    const fu = f32(u - u0);
    const u0i = ((u0 % pw) + pw) % pw;
    const u1i = (u0i + 1) % pw;
    const v0i = Math.min(Math.floor(v), ph - 2);
    const fv = f32(v - v0i);
    const gu = f32(1 - fu);
    const gv = f32(1 - fv);
    const a = (v0i * pw + u0i) * 3;
    const b = (v0i * pw + u1i) * 3;
    const c = ((v0i + 1) * pw + u0i) * 3;
    const d = ((v0i + 1) * pw + u1i) * 3;
    for (let k = 0; k < 3; k++) {
      const top = f32(f32(pano[a + k] * gu) + f32(pano[b + k] * fu));
      const bot = f32(f32(pano[c + k] * gu) + f32(pano[d + k] * fu));
      const o = f32(f32(top * gv) + f32(bot * fv));
      dst[p * 3 + k] = Math.min(255, Math.max(0, rint(o)));
    }
  }
  return dst;
}

/**
 * {headings, views: [Uint8Array size*size*3]} of an RGB panorama (panorama_views): a panorama
 * much wider than the views need is first box-downscaled.
 */
export function panoramaViews(rgb, w, h, nViews = DEFAULT_PANO_VIEWS, size = 256, fovDeg = DEFAULT_FOV) {
  const need = panoWidthFor(size, fovDeg);
  let img = { data: rgb, width: w, height: h };
  if (w > 1.5 * need) {
    const nh = Math.max(2, pyRound((need * h) / w));
    img = { data: resize(rgb, w, h, need, nh, 'box'), width: need, height: nh };
  }
  const headings = viewHeadings(nViews);
  return { headings, views: headings.map((hd) => renderView(img.data, img.width, img.height, hd, fovDeg, size)) };
}
