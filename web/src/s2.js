// S2 cell ids of points, enough to find which cell of a cell set holds a guess.
// Same construction as s2sphere / the Python side (quadratic projection, Hilbert order).

const MAX_LEVEL = 30;
const IJ_TO_POS = [
  [0, 1, 3, 2],
  [0, 3, 1, 2],
  [2, 3, 1, 0],
  [2, 1, 3, 0],
];
const POS_TO_ORIENTATION = [1, 0, 0, 3];

function stFromUv(u) {
  return u >= 0 ? 0.5 * Math.sqrt(1 + 3 * u) : 1 - 0.5 * Math.sqrt(1 - 3 * u);
}

function faceUv(x, y, z) {
  const ax = Math.abs(x);
  const ay = Math.abs(y);
  const az = Math.abs(z);
  // First largest component, like numpy's argmax on the Python side.
  let face = 0;
  let m = ax;
  if (ay > m) {
    face = 1;
    m = ay;
  }
  if (az > m) face = 2;
  if ([x, y, z][face] < 0) face += 3;
  switch (face) {
    case 0: return [face, y / x, z / x];
    case 1: return [face, -x / y, z / y];
    case 2: return [face, -x / z, -y / z];
    case 3: return [face, z / x, y / x];
    case 4: return [face, z / y, -x / y];
    default: return [face, -y / z, -x / z];
  }
}

/** Leaf (level 30) S2 cell id of a point, as a BigInt. */
export function leafId(latDeg, lonDeg) {
  const la = (latDeg * Math.PI) / 180;
  const lo = (lonDeg * Math.PI) / 180;
  const [face, u, v] = faceUv(Math.cos(la) * Math.cos(lo), Math.cos(la) * Math.sin(lo), Math.sin(la));
  const n = 2 ** MAX_LEVEL;
  const i = Math.max(0, Math.min(n - 1, Math.floor(n * stFromUv(u))));
  const j = Math.max(0, Math.min(n - 1, Math.floor(n * stFromUv(v))));
  let orient = face & 1;
  let pos = 0n;
  for (let k = MAX_LEVEL - 1; k >= 0; k--) {
    const ij = (Math.floor(i / 2 ** k) % 2) * 2 + (Math.floor(j / 2 ** k) % 2);
    const p = IJ_TO_POS[orient][ij];
    pos = (pos << 2n) | BigInt(p);
    orient ^= POS_TO_ORIENTATION[p];
  }
  return (BigInt(face) << 61n) | (pos << 1n) | 1n;
}

/** The level-`level` ancestor of a cell id. */
export function parentId(id, level) {
  const lsb = 1n << BigInt(2 * (MAX_LEVEL - level));
  return (id & ~(lsb - 1n)) | lsb;
}

/** S2 token (hex without trailing zeros) of a cell id. */
export function toToken(id) {
  if (id === 0n) return 'X';
  return id.toString(16).padStart(16, '0').replace(/0+$/, '');
}
