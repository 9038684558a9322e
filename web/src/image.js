// Photos into RGB pixels: decode with EXIF orientation, no colour conversion, as Pillow does.
// Every failure is an Error whose message says what happened and what to do; HEIC (what
// iPhones take) is decoded by libheif (WebAssembly, loaded only when a HEIC is picked).
import { exifOrientation, readGps } from './exif.js';
import { jpegDraftScale, rgbaToRgb } from './preprocess.js';
import { imageSize, jpegComplete, sniffFormat } from './sniff.js';

/** Pillow's limit (img2loc.data.images.MAX_PIXELS): refuse decompression bombs. */
export const MAX_PIXELS = 90_000_000;
/**
 * Largest canvas drawn into (iOS Safari refuses canvases above 16.7 MP). Bigger photos
 * (24-48 MP phone photos) are scaled down while decoding, by the same power of two that
 * Pillow's JPEG draft mode would use, so they never reach a canvas at full size.
 */
export const MAX_CANVAS_PIXELS = 4096 * 4096;
/** Bytes kept for the XMP (panorama) check: APP1 segments sit in the first 64 KiB. */
const HEAD_BYTES = 1 << 17;

const NAMES = { jpeg: 'JPEG', png: 'PNG', gif: 'GIF', webp: 'WebP', bmp: 'BMP', tiff: 'TIFF', heic: 'HEIC', avif: 'AVIF' };

export class PhotoError extends Error {
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

function canvasPixels(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data);
}

let heifModule = null;
/** libheif, loaded on first use (a separate 2 MB file; the page stays fast without it). */
async function libheif() {
  heifModule ??= import('libheif-js/libheif-wasm/libheif-bundle.mjs').then((m) => m.default());
  return heifModule;
}

async function decodeHeic(bytes, name) {
  let lib;
  try {
    lib = await libheif();
  } catch (e) {
    throw new PhotoError(`${name}: the HEIC decoder could not start (${e.message}); convert the photo to JPEG, or use \`img2loc predict\``, 'heic');
  }
  const images = new lib.HeifDecoder().decode(bytes);
  if (!images?.length) throw new PhotoError(`${name}: this HEIC file holds no image we can decode (damaged?); convert it to JPEG, or use \`img2loc predict\``, 'heic');
  const img = images[0];
  try {
    const width = img.get_width();
    const height = img.get_height();
    if (width * height > MAX_PIXELS) throw new PhotoError(`${name}: ${width}x${height} is over the ${MAX_PIXELS / 1e6} MP limit; downscale it first`, 'size');
    const rgba = new Uint8ClampedArray(width * height * 4);
    await new Promise((ok, bad) => {
      img.display({ data: rgba, width, height }, (d) => (d ? ok() : bad(new PhotoError(`${name}: the HEIC image could not be decoded (damaged?); convert it to JPEG`, 'heic'))));
    });
    return { rgb: rgbaToRgb(rgba, img.has_alpha?.() ?? false), width, height };
  } finally {
    for (const i of images) i.free?.();
  }
}

/**
 * A photo file or blob -> {rgb, width, height, jpeg, head, gps, format, scaled}:
 * `jpeg` says the pixels are a full-size JPEG decode (preprocessing then reduces it as
 * Pillow's draft mode would), `scaled` describes a downscale of a very big photo.
 * `draftFor(w, h)`: the smallest side Python decodes this image at (JPEG draft request).
 */
export async function readPhoto(blob, name = 'photo', { draftFor = () => 256 } = {}) {
  if (!blob.size) throw new PhotoError(`${name}: the file is empty; pick the photo again`, 'empty');
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const format = sniffFormat(bytes);
  if (format === null) {
    const what = blob.type || name.split('.').pop();
    throw new PhotoError(`${name} is not a photo (${what}); pick a JPEG, PNG, WebP or HEIC image`, 'type');
  }
  if (format === 'jpeg' && !jpegComplete(bytes)) {
    throw new PhotoError(`${name}: this JPEG is cut off (an interrupted download or copy?); copy or download it again`, 'truncated');
  }
  const head = bytes.subarray(0, HEAD_BYTES);
  const gps = readGps(bytes);
  if (format === 'heic') {
    const img = await decodeHeic(bytes, name);
    return { ...img, jpeg: false, head, gps, format, scaled: null };
  }
  const size = imageSize(bytes, format);
  if (size && size.width * size.height > MAX_PIXELS) {
    throw new PhotoError(`${name}: ${size.width}x${size.height} is over the ${MAX_PIXELS / 1e6} MP limit; downscale it first`, 'size');
  }
  const opts = { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' };
  let scaled = null;
  let jpeg = format === 'jpeg';
  if (size && size.width * size.height > MAX_CANVAS_PIXELS) {
    // Decode straight to a smaller bitmap: at the JPEG draft scale Python uses, at least 1/2.
    const { width: w, height: h } = size;
    const want = draftFor(w, h);
    let k = Math.max(2, jpegDraftScale(w, h, want));
    while (Math.ceil(w / k) * Math.ceil(h / k) > MAX_CANVAS_PIXELS) k *= 2;
    const [tw, th] = [Math.ceil(w / k), Math.ceil(h / k)];
    const [ow, oh] = exifOrientation(bytes) >= 5 ? [th, tw] : [tw, th];
    Object.assign(opts, { resizeWidth: ow, resizeHeight: oh, resizeQuality: 'high' });
    scaled = { from: `${((w * h) / 1e6).toFixed(0)} MP`, to: `${ow}x${oh}`, k };
    jpeg = false; // already at the draft scale
  }
  let bmp;
  try {
    bmp = await createImageBitmap(new Blob([bytes], { type: blob.type || `image/${format}` }), opts);
  } catch {
    const kind = NAMES[format];
    throw new PhotoError(
      ['jpeg', 'png', 'gif', 'bmp'].includes(format)
        ? `${name}: this ${kind} file is damaged and cannot be read; try another copy of it`
        : `${name}: this browser cannot decode ${kind} images; convert it to JPEG, or use \`img2loc predict\``,
      'decode',
    );
  }
  try {
    const { width, height } = bmp;
    return { rgb: canvasPixels(bmp, width, height), width, height, jpeg, head, gps, format, scaled };
  } finally {
    bmp.close();
  }
}

/** {rgb, width, height, jpeg: false} of the current frame of a <video> or a canvas. */
export function grabFrame(source, crop = null) {
  const w = source.videoWidth ?? source.width;
  const h = source.videoHeight ?? source.height;
  if (!w || !h) throw new PhotoError('no video frame yet; wait a moment for the camera to start', 'camera');
  const c = crop ?? { x: 0, y: 0, w, h };
  const canvas = new OffscreenCanvas(c.w, c.h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, c.x, c.y, c.w, c.h, 0, 0, c.w, c.h);
  return { rgb: rgbaToRgb(ctx.getImageData(0, 0, c.w, c.h).data), width: c.w, height: c.h, jpeg: false, head: null, gps: null, format: 'frame', scaled: null };
}
