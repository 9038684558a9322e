// Photos with known positions: a CSV with image,latitude,longitude (+ projection) beside them.

/** [{url, name, lat, lon, projection}] of `${base}locations.csv` ([] when absent). */
export async function loadExamples(base) {
  const r = await fetch(`${base}locations.csv`);
  if (!r.ok) return [];
  const [head, ...rows] = (await r.text()).trim().split(/\r?\n/);
  const cols = head.split(',');
  const ix = (n) => cols.indexOf(n);
  return rows
    .map((line) => line.split(','))
    .map((c) => ({ url: new URL(c[ix('image')], base).href, name: c[ix('image')].split('/').pop(), lat: Number(c[ix('latitude')]), lon: Number(c[ix('longitude')]), projection: c[ix('projection')] ?? '' }))
    .filter((e) => Number.isFinite(e.lat) && Number.isFinite(e.lon));
}
