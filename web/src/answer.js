// An answer in words: what the card, the status line and screen readers say about a
// prediction. Pure functions: they run in Node for the tests. New facts about an answer
// (e.g. "this photo looks unlike the street views the model learned from") go into
// `notes`, which the page lists under the headline.

/** Same sentence as img2loc.inference.output.GUESS_EXPLAINED (a test keeps them equal). */
export const GUESS_EXPLAINED =
  'The guess is the point with the best expected GeoGuessr score; the list shows the regions the model finds most likely, so the guess can lie between them.';

/** Same words as img2loc.inference.predictor.FALLBACK_NOTE (a test keeps them equal). */
export const FALLBACK_NOTE =
  'unlike the street photos this model learned from: guessing where photos are usually taken';

export function fmtKm(km) {
  if (km < 1) return `${Math.round(km * 1000)} m`;
  if (km < 100) return `${km.toFixed(1)} km`;
  return `${Math.round(km).toLocaleString('en')} km`;
}

export function fmtPct(p) {
  const v = 100 * p;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}%`;
}

/**
 * {headline, details: [string], notes: [string]} of a summarized prediction `res`
 * (decode.summarize plus: truth {lat, lon, source: 'exif' | 'known'}, errorKm, views).
 */
export function describe(res) {
  const headline = res.place || `cell ${res.token}`;
  const details = [`confidence ${fmtPct(res.confidence)}`];
  if (res.truth) {
    const where = res.truth.source === 'exif' ? 'the position in its EXIF' : 'where it was taken';
    details.push(`${fmtKm(res.errorKm)} from ${where}`);
  } else details.push('no true position in the file');
  const notes = [];
  if (res.fallback) {
    const w = fmtPct(res.inDomain);
    notes.push(`This photo is ${FALLBACK_NOTE} (the model's own answer weighs ${w}).`);
  }
  if (res.views > 1) notes.push(`360° panorama: ${res.views} views looked at and combined, as \`img2loc predict\` does.`);
  if (res.scaled) notes.push(`A ${res.scaled.from} photo, scaled to ${res.scaled.to} before reading it.`);
  return { headline, details, notes };
}

/** One line for the status bar. */
export function statusLine(name, res) {
  const d = describe(res);
  return `${name}: ${d.headline} (${d.details.join(', ')})`;
}
