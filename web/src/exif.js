// EXIF GPS position of a photo, read the way `img2loc predict` reads it (Pillow's TIFF
// directory reader + img2loc.data.exif), so browser and command line agree on which photos
// carry a true position and where. Pure functions on bytes: they run in Node for the tests.
//
// Where the EXIF block lives: a JPEG's first APP1 "Exif" segment, a HEIC/AVIF's "Exif" item
// (ISO-BMFF meta box, wherever in the file; pillow-heif's offset rules), a PNG's eXIf chunk
// or a WebP's EXIF chunk.

const GPS_IFD = 0x8825;
const LAT_REF = 1;
const LAT = 2;
const LON_REF = 3;
const LON = 4;

const ascii = (b, i, n) => String.fromCharCode(...b.subarray(i, i + n));
const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u32be = (b, i) => ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]);
const u32le = (b, i) => ((b[i + 3] << 24) >>> 0) + ((b[i + 2] << 16) | (b[i + 1] << 8) | b[i]);

/** The APP1 Exif payload of a JPEG (after "Exif\0\0" is left to stripExifHeader), or null. */
function jpegExif(b) {
  let i = 2;
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
    if (m === 0xda || m === 0xd9) return null;
    const len = u16be(b, i + 2);
    if (len < 2) return null;
    const seg = b.subarray(i + 4, Math.min(b.length, i + 2 + len));
    if (m === 0xe1 && seg.length >= 6 && ascii(seg, 0, 6) === 'Exif\0\0') return seg;
    i += 2 + len;
  }
  return null;
}

/** ISO-BMFF boxes in b[start, end): [{type, start (payload), end}]. */
function boxes(b, start, end) {
  const out = [];
  let i = start;
  while (i + 8 <= end) {
    let size = u32be(b, i);
    const type = ascii(b, i + 4, 4);
    let head = 8;
    if (size === 1) {
      if (i + 16 > end) break;
      size = u32be(b, i + 8) * 2 ** 32 + u32be(b, i + 12);
      head = 16;
    } else if (size === 0) size = end - i;
    if (size < head || i + size > end) {
      // A box running past the end: take what is there (files cut short still have a meta box).
      out.push({ type, start: i + head, end });
      break;
    }
    out.push({ type, start: i + head, end: i + size });
    i += size;
  }
  return out;
}

function uint(b, i, n) {
  if (n === 0) return 0;
  if (n === 2) return u16be(b, i);
  if (n === 4) return u32be(b, i);
  if (n === 8) return u32be(b, i) * 2 ** 32 + u32be(b, i + 4);
  throw new Error(`bad integer size ${n}`);
}

/** The Exif item of a HEIF/AVIF file (the one describing the primary image), or null. */
function heifExif(b) {
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  if (!meta) return null;
  const kids = boxes(b, meta.start + 4, meta.end);
  const get = (t) => kids.find((x) => x.type === t);
  let primary = null;
  const pitm = get('pitm');
  if (pitm) primary = b[pitm.start] === 0 ? u16be(b, pitm.start + 4) : u32be(b, pitm.start + 4);
  // Item types.
  const exifIds = [];
  const iinf = get('iinf');
  if (!iinf) return null;
  const v = b[iinf.start];
  for (const e of boxes(b, iinf.start + 4 + (v === 0 ? 2 : 4), iinf.end)) {
    if (e.type !== 'infe') continue;
    const ver = b[e.start];
    if (ver < 2) continue;
    const id = ver === 2 ? u16be(b, e.start + 4) : u32be(b, e.start + 4);
    const at = e.start + 4 + (ver === 2 ? 2 : 4) + 2;
    if (ascii(b, at, 4) === 'Exif') exifIds.push(id);
  }
  if (!exifIds.length) return null;
  // Which Exif item describes the primary image ('cdsc' reference), else the first.
  let chosen = exifIds[0];
  const iref = get('iref');
  if (iref && primary !== null) {
    const wide = b[iref.start] !== 0;
    const n = wide ? 4 : 2;
    for (const r of boxes(b, iref.start + 4, iref.end)) {
      if (r.type !== 'cdsc') continue;
      const from = uint(b, r.start, n);
      const count = u16be(b, r.start + n);
      for (let k = 0; k < count; k++) {
        if (uint(b, r.start + n + 2 + k * n, n) === primary && exifIds.includes(from)) {
          chosen = from;
          k = count;
        }
      }
      if (chosen !== exifIds[0]) break;
    }
  }
  // Where its bytes are.
  const iloc = get('iloc');
  if (!iloc) return null;
  const ver = b[iloc.start];
  let i = iloc.start + 4;
  const offSize = b[i] >> 4;
  const lenSize = b[i] & 15;
  const baseSize = b[i + 1] >> 4;
  const idxSize = ver === 1 || ver === 2 ? b[i + 1] & 15 : 0;
  i += 2;
  const count = ver < 2 ? u16be(b, i) : u32be(b, i);
  i += ver < 2 ? 2 : 4;
  const idat = get('idat');
  for (let k = 0; k < count && i < iloc.end; k++) {
    const id = ver < 2 ? u16be(b, i) : u32be(b, i);
    i += ver < 2 ? 2 : 4;
    let method = 0;
    if (ver === 1 || ver === 2) {
      method = u16be(b, i) & 15;
      i += 2;
    }
    i += 2; // data_reference_index
    const base = uint(b, i, baseSize);
    i += baseSize;
    const extents = u16be(b, i);
    i += 2;
    const parts = [];
    for (let e = 0; e < extents; e++) {
      i += idxSize;
      const off = uint(b, i, offSize);
      i += offSize;
      const len = uint(b, i, lenSize);
      i += lenSize;
      parts.push([base + off, len]);
    }
    if (id !== chosen) continue;
    const origin = method === 1 && idat ? idat.start : 0;
    const chunks = parts.map(([off, len]) => b.subarray(origin + off, len ? origin + off + len : b.length));
    const total = chunks.reduce((s, c) => s + c.length, 0);
    const data = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      data.set(c, at);
      at += c.length;
    }
    // pillow-heif's _retrieve_exif: a 4-byte offset to the TIFF header leads the item.
    let skip = u32be(data, 0) + 4;
    if (data.length - skip <= 4) skip = 4;
    else if (skip >= 6 && ascii(data, skip - 6, 6) === 'Exif\0\0') skip -= 6;
    return data.subarray(skip);
  }
  return null;
}

/** A PNG's eXIf chunk or a WebP's EXIF chunk, or null. */
function chunkExif(b, png) {
  let i = png ? 8 : 12;
  while (i + 8 <= b.length) {
    const len = png ? u32be(b, i) : u32le(b, i + 4);
    const type = png ? ascii(b, i + 4, 4) : ascii(b, i, 4);
    const start = i + 8;
    if ((png && type === 'eXIf') || (!png && type === 'EXIF')) return b.subarray(start, Math.min(b.length, start + len));
    i = start + len + (png ? 4 : len & 1);
  }
  return null;
}

/** The EXIF block (TIFF header first) of an encoded image, or null when it has none. */
export function exifBlock(b) {
  let raw = null;
  if (b[0] === 0xff && b[1] === 0xd8) raw = jpegExif(b);
  else if (b.length >= 12 && ascii(b, 4, 4) === 'ftyp') raw = heifExif(b);
  else if (b[0] === 0x89 && ascii(b, 1, 3) === 'PNG') raw = chunkExif(b, true);
  else if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') raw = chunkExif(b, false);
  if (!raw) return null;
  // Pillow's Exif.load strips one or two "Exif\0\0" headers.
  for (let k = 0; k < 2 && raw.length >= 6 && ascii(raw, 0, 6) === 'Exif\0\0'; k++) raw = raw.subarray(6);
  return raw.length ? raw : null;
}

// Pillow's TIFF value types: [bytes per value, decoder].
const TYPES = {
  1: 1, // byte
  2: 1, // ascii
  3: 2, // short
  4: 4, // long
  5: 8, // rational
  6: 1, // signed byte
  7: 1, // undefined
  8: 2, // signed short
  9: 4, // signed long
  10: 8, // signed rational
  11: 4, // float
  12: 8, // double
  13: 4, // IFD
  16: 8, // long8
};

/**
 * One TIFF directory as Pillow's ImageFileDirectory_v2.load reads it: tag -> {type, data}.
 * Unknown types and values pointing outside the block are skipped; a directory cut short
 * keeps the entries read before the cut.
 */
function readIfd(t, le, offset) {
  const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const out = new Map();
  if (offset + 2 > t.length) return out;
  const n = dv.getUint16(offset, le);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const e = offset + 2 + 12 * k;
    if (e + 12 > t.length) break;
    const tag = dv.getUint16(e, le);
    const type = dv.getUint16(e + 2, le);
    const count = dv.getUint32(e + 4, le);
    if (out.has(tag)) continue;
    const unit = TYPES[type];
    if (!unit) continue;
    const size = count * unit;
    let data;
    if (size > 4) {
      const at = dv.getUint32(e + 8, le);
      total += size;
      if (total > t.length) continue;
      data = t.subarray(at, Math.min(t.length, at + size));
    } else data = t.subarray(e + 8, e + 8 + size);
    if (data.length !== size || !data.length) continue;
    out.set(tag, { type, data, le });
  }
  return out;
}

/** A tag's value as img2loc.data.exif sees it: a string, bytes, a number or an array of numbers. */
function value({ type, data, le }) {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (type === 2) {
    let d = data;
    if (d.length && d[d.length - 1] === 0) d = d.subarray(0, d.length - 1);
    return String.fromCharCode(...d); // latin-1
  }
  if (type === 1 || type === 7) return data; // bytes
  const unit = TYPES[type];
  const vals = [];
  for (let i = 0; i + unit <= data.length; i += unit) {
    switch (type) {
      case 3: vals.push(dv.getUint16(i, le)); break;
      case 4: case 13: vals.push(dv.getUint32(i, le)); break;
      case 6: vals.push(dv.getInt8(i)); break;
      case 8: vals.push(dv.getInt16(i, le)); break;
      case 9: vals.push(dv.getInt32(i, le)); break;
      case 11: vals.push(dv.getFloat32(i, le)); break;
      case 12: vals.push(dv.getFloat64(i, le)); break;
      case 16: vals.push(Number(dv.getBigUint64(i, le))); break;
      case 5: case 10: {
        const num = type === 5 ? dv.getUint32(i, le) : dv.getInt32(i, le);
        const den = type === 5 ? dv.getUint32(i + 4, le) : dv.getInt32(i + 4, le);
        vals.push(den === 0 ? NaN : num / den); // Pillow's IFDRational: x/0 is NaN
        break;
      }
      default: break;
    }
  }
  return vals.length === 1 ? vals[0] : vals; // Pillow's _fixup: one-element tuples unwrapped
}

/** img2loc.data.exif.dms_to_degrees. */
export function dmsToDegrees(v) {
  if (typeof v === 'number') return v;
  if (!Array.isArray(v)) return NaN; // text, bytes: not a number
  if (!v.length || Number.isNaN(v[0])) return NaN;
  const mins = v.length > 1 && !Number.isNaN(v[1]) ? v[1] : 0.0;
  const secs = v.length > 2 && !Number.isNaN(v[2]) ? v[2] : 0.0;
  return v[0] + mins / 60.0 + secs / 3600.0;
}

function ref(v) {
  let s;
  if (v instanceof Uint8Array) s = String.fromCharCode(...[...v].filter((c) => c < 128));
  else if (typeof v === 'number') s = v ? String(v) : '';
  else if (Array.isArray(v)) s = v.length ? `(${v.join(', ')})` : '';
  else s = v ?? '';
  return s.replace(/^[\0 ]+|[\0 ]+$/g, '').toUpperCase().slice(0, 1);
}

/**
 * {lat, lon, reason} from an EXIF block, as img2loc.data.exif.gps_from_exif: lat/lon are
 * null with the reason when there is no usable position.
 */
export function gpsFromExif(tiff) {
  const none = (reason) => ({ lat: null, lon: null, reason });
  if (!tiff || tiff.length < 8) return none('no GPS position in EXIF');
  const order = ascii(tiff, 0, 2);
  if (order !== 'II' && order !== 'MM') return none('EXIF unreadable (not a TIFF header)');
  const le = order === 'II';
  const dv = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const ifd0 = readIfd(tiff, le, dv.getUint32(4, le));
  const ptr = ifd0.get(GPS_IFD);
  let gps = new Map();
  if (ptr) {
    const off = value(ptr);
    const at = Array.isArray(off) ? off[0] : off;
    if (typeof at === 'number' && [3, 4, 13, 16, 8, 9].includes(ptr.type)) gps = readIfd(tiff, le, at);
  }
  if (!gps.has(LAT) || !gps.has(LON)) return none('no GPS position in EXIF');
  let lat = dmsToDegrees(value(gps.get(LAT)));
  let lon = dmsToDegrees(value(gps.get(LON)));
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return none('EXIF GPS position is empty or unreadable (0/0 values)');
  if (gps.has(LAT_REF) && ref(value(gps.get(LAT_REF))) === 'S') lat = -Math.abs(lat);
  if (gps.has(LON_REF) && ref(value(gps.get(LON_REF))) === 'W') lon = -Math.abs(lon);
  if (lat === 0 && lon === 0) return none('EXIF GPS is 0,0 (a placeholder written without a fix)');
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return none(`EXIF GPS out of range (lat=${lat}, lon=${lon})`);
  return { lat, lon, reason: '' };
}

/** EXIF orientation (1-8; 5-8 turn the picture by 90°) of an encoded image, 1 when unknown. */
export function exifOrientation(bytes) {
  try {
    const t = exifBlock(bytes);
    if (!t) return 1;
    const le = ascii(t, 0, 2) === 'II';
    const tag = readIfd(t, le, new DataView(t.buffer, t.byteOffset, t.byteLength).getUint32(4, le)).get(0x0112);
    const v = tag ? value(tag) : 1;
    return typeof v === 'number' && v >= 1 && v <= 8 ? v : 1;
  } catch {
    return 1;
  }
}

/** EXIF GPS of an encoded image's bytes: {lat, lon, reason}. Never throws. */
export function readGps(bytes) {
  try {
    return gpsFromExif(exifBlock(bytes));
  } catch (e) {
    return { lat: null, lon: null, reason: `EXIF unreadable (${e.message})` };
  }
}
