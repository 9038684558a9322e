// Photos into RGB pixels: decode with EXIF orientation, no colour conversion, as Pillow does.
import exifr from 'exifr/dist/mini.esm.mjs';
import { rgbaToRgb } from './preprocess.js';

/** Pillow's limit (img2loc.data.images.MAX_PIXELS): refuse decompression bombs. */
export const MAX_PIXELS = 90_000_000;

export async function isJpeg(blob) {
  const b = new Uint8Array(await blob.slice(0, 3).arrayBuffer());
  return b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
}

function pixels(source, width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data);
}

/** {rgb, width, height, jpeg} of an image file or blob; throws an Error a user can act on. */
export async function decodeBlob(blob, name = 'photo') {
  if (!blob.size) throw new Error(`${name}: empty file`);
  let bmp;
  try {
    bmp = await createImageBitmap(blob, { imageOrientation: 'from-image', colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new Error(`${name}: this browser cannot decode it (HEIC? convert it to JPEG, or use \`img2loc predict\`)`);
  }
  try {
    const { width, height } = bmp;
    if (width * height > MAX_PIXELS) throw new Error(`${name}: ${width}x${height} is over the ${MAX_PIXELS / 1e6} MP limit; downscale it first`);
    return { rgb: pixels(bmp, width, height), width, height, jpeg: await isJpeg(blob) };
  } finally {
    bmp.close();
  }
}

/** {rgb, width, height, jpeg: false} of the current frame of a <video> or a canvas. */
export function grabFrame(source, crop = null) {
  const w = source.videoWidth ?? source.width;
  const h = source.videoHeight ?? source.height;
  if (!w || !h) throw new Error('no video frame yet; wait for the camera to start');
  const c = crop ?? { x: 0, y: 0, w, h };
  const canvas = new OffscreenCanvas(c.w, c.h);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, c.x, c.y, c.w, c.h, 0, 0, c.w, c.h);
  return { rgb: rgbaToRgb(ctx.getImageData(0, 0, c.w, c.h).data), width: c.w, height: c.h, jpeg: false };
}

/** EXIF GPS position {lat, lon} of a photo, or null. */
export async function exifGps(blob) {
  try {
    // exifr's mini build has no gps() helper; parse() adds latitude/longitude from the GPS IFD.
    const g = await exifr.parse(blob, { gps: true, ifd0: false, exif: false, interop: false, ifd1: false });
    if (g && Number.isFinite(g.latitude) && Number.isFinite(g.longitude) && Math.abs(g.latitude) <= 90 && Math.abs(g.longitude) <= 180 && !(g.latitude === 0 && g.longitude === 0)) {
      return { lat: g.latitude, lon: g.longitude };
    }
  } catch {
    // Broken EXIF: no GPS, the photo itself is still fine.
  }
  return null;
}
