// Decoded pixels -> the model inputs of one photo, as img2loc.inference.images.load_input
// computes them: one input for an ordinary photo; for a 360° panorama, one per rendered view
// (4 headings at 100°), whose probabilities are then averaged (combineViews) before decoding,
// as `img2loc predict` does. Pure functions: they run in Node for the parity tests.
import { meanProbs } from './decode.js';
import { jpegDraftScale, preprocessRgb, reduce } from './preprocess.js';
import { DEFAULT_FOV, DEFAULT_PANO_VIEWS, detectPanorama, isEquirectangularSize, panoWidthFor, panoramaViews } from './panorama.js';

/**
 * {inputs: [Float32Array 3*S*S], panorama: null | 'xmp' | 'seam', headings: [deg]} of an RGB
 * image. `isJpeg`: the pixels are a full decode of a JPEG (Python decodes it at a reduced
 * scale: a box reduction stands in). `head`: the file's first bytes (for the XMP).
 */
export function modelInputs(rgb, w, h, cfg, { isJpeg = false, head = null, panoViews = DEFAULT_PANO_VIEWS, fov = DEFAULT_FOV } = {}) {
  const plain = () => ({ inputs: [preprocessRgb(rgb, w, h, cfg, { isJpeg })], panorama: null, headings: [] });
  if (panoViews <= 0 || !isEquirectangularSize(w, h)) return plain();
  // As Python: a 2:1 JPEG decodes at the resolution the views need (>= 256 px), not the model's.
  const need = panoWidthFor(cfg.resize_size, fov);
  const draft = Math.max(Math.floor(need / 2), 256);
  let img = { data: rgb, width: w, height: h };
  if (isJpeg) img = reduce(rgb, w, h, jpegDraftScale(w, h, draft));
  const kind = detectPanorama(img.data, img.width, img.height, head);
  if (kind === null) {
    return { inputs: [preprocessRgb(img.data, img.width, img.height, cfg)], panorama: null, headings: [] };
  }
  const { headings, views } = panoramaViews(img.data, img.width, img.height, panoViews, cfg.resize_size, fov);
  return { inputs: views.map((v) => preprocessRgb(v, cfg.resize_size, cfg.resize_size, cfg)), panorama: kind, headings };
}

/** One place from several views' probabilities: their mean (img2loc.geo.views, "mean"),
 * cast to float32 as the predictor hands it to decoding. */
export function combineViews(list, nCells = null) {
  return list.length === 1 ? list[0] : Float32Array.from(meanProbs(list, nCells));
}

/** The smallest side Python decodes a w x h JPEG at (its draft request), for big photos. */
export function draftSize(cfg, w, h, fov = DEFAULT_FOV) {
  return isEquirectangularSize(w, h) ? Math.max(Math.floor(panoWidthFor(cfg.resize_size, fov) / 2), 256) : cfg.resize_size;
}
