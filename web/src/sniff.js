// What a file is, from its first bytes: format, size and (for JPEG) whether it is complete.
// Pure functions on bytes: they run in Node for the tests. Used to answer every pick with
// the right message (a truncated JPEG is not a HEIC; a .txt is not a photo) and to size
// big photos down before they reach a canvas.

const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u16le = (b, i) => b[i] | (b[i + 1] << 8);
const u32be = (b, i) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
const u32le = (b, i) => ((b[i + 3] << 24) >>> 0) + ((b[i + 2] << 16) | (b[i + 1] << 8) | b[i]);
const ascii = (b, i, n) => String.fromCharCode(...b.subarray(i, i + n));

/** ISO-BMFF brands of HEIF stills (what iPhones write) and of AVIF. */
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1', 'mif2']);

/** 'jpeg' | 'png' | 'gif' | 'webp' | 'bmp' | 'tiff' | 'heic' | 'avif' | null from a file's head. */
export function sniffFormat(b) {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 3) === 'PNG') return 'png';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (b.length >= 2 && ascii(b, 0, 2) === 'BM') return 'bmp';
  if (b.length >= 4 && (ascii(b, 0, 4) === 'II*\0' || ascii(b, 0, 4) === 'MM\0*')) return 'tiff';
  if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp') {
    const size = Math.min(u32be(b, 0), b.length);
    const brands = [ascii(b, 8, 4)];
    for (let i = 16; i + 4 <= size; i += 4) brands.push(ascii(b, i, 4));
    if (brands.some((x) => x === 'avif' || x === 'avis')) return 'avif';
    if (brands.some((x) => HEIF_BRANDS.has(x))) return 'heic';
  }
  return null;
}

/** Width and height stored in a JPEG's frame header (before EXIF orientation), or null. */
export function jpegSize(b) {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) {
      i += 1; // junk between segments: skipped, as Pillow does
      continue;
    }
    const m = b[i + 1];
    if (m === 0xff) {
      i += 1;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return null;
    const len = u16be(b, i + 2);
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      return { width: u16be(b, i + 7), height: u16be(b, i + 5) };
    }
    i += 2 + len;
  }
  return null;
}

/** Width and height of an image from its header (JPEG, PNG, GIF, WebP, BMP), or null. */
export function imageSize(b, format = sniffFormat(b)) {
  if (format === 'jpeg') return jpegSize(b);
  if (format === 'png' && b.length >= 24) return { width: u32be(b, 16), height: u32be(b, 20) };
  if (format === 'gif' && b.length >= 10) return { width: u16le(b, 6), height: u16le(b, 8) };
  if (format === 'bmp' && b.length >= 26) return { width: u32le(b, 18), height: Math.abs(u32le(b, 22) | 0) };
  if (format === 'webp' && b.length >= 30) {
    const kind = ascii(b, 12, 4);
    if (kind === 'VP8X') return { width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (kind === 'VP8 ') return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    if (kind === 'VP8L') {
      const v = u32le(b, 21);
      return { width: (v & 0x3fff) + 1, height: ((v >>> 14) & 0x3fff) + 1 };
    }
  }
  return null;
}

/**
 * Whether a JPEG holds its end-of-image marker after the first scan. The entropy-coded data
 * never contains FF D9 (FF bytes are stuffed as FF 00), so a file without it was cut off
 * (an interrupted download or copy): Pillow refuses it ("image file is truncated") and so do we.
 */
export function jpegComplete(b) {
  let i = 2;
  // Walk the header segments to the first scan.
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) {
      i += 1; // junk between segments: skipped, as Pillow does
      continue;
    }
    const m = b[i + 1];
    if (m === 0xff) {
      i += 1;
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += 2;
      continue;
    }
    if (m === 0xd9) return false; // an end before any scan: no picture
    i += 2 + u16be(b, i + 2);
    if (m === 0xda) break;
  }
  for (let j = b.length - 2; j >= i; j--) if (b[j] === 0xff && b[j + 1] === 0xd9) return true;
  return false;
}
