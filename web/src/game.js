// Game mode: five rounds on photos with known positions (the server's /game/ set: the
// bundled examples, or any geotagged photos given to `img2loc serve --game`); the player
// pins a guess, the model guesses (score-optimal rule), both scored with GeoGuessr's formula.
// Photos are served under neutral names (nothing in a name gives the place away); a 360°
// panorama is shown as a view the player can turn.
import { decodeScore, geoguessrScore, haversineKm } from './decode.js';
import { fmtKm } from './answer.js';
import { loadExamples } from './examples.js';
import { PanoViewer } from './panoview.js';

export const ROUNDS = 5;
/** Photos closer than this count as one place when rounds are spread over places. */
const SAME_PLACE_KM = 100;

function shuffle(a, rnd = Math.random) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** `n` photos spread over places: one from each place in turn (places and photos shuffled). */
export function spreadRounds(photos, n, rnd = Math.random) {
  const places = [];
  for (const p of shuffle([...photos], rnd)) {
    const g = places.find((q) => haversineKm(q[0].lat, q[0].lon, p.lat, p.lon) < SAME_PLACE_KM);
    if (g) g.push(p);
    else places.push([p]);
  }
  const out = [];
  for (let k = 0; out.length < Math.min(n, photos.length); k++) {
    for (const g of places) if (k < g.length && out.length < n) out.push(g[k]);
  }
  return out;
}

export class Game {
  constructor({ app, world, map, $, status }) {
    Object.assign(this, { app, world, map, $, status });
    this.rounds = [];
    this.i = -1;
    this.pick = null;
    this.pin = null;
    this.viewer = new PanoViewer($('game-pano-canvas'), $('pano-caption'));
    $('pano-left').addEventListener('click', () => this.viewer.turn(-30));
    $('pano-right').addEventListener('click', () => this.viewer.turn(30));
    $('game-start').addEventListener('click', () => this.start());
    $('game-guess').addEventListener('click', () => this.guess());
    $('game-next').addEventListener('click', () => this.next());
    world.map.on('click', (e) => this.active && this.click(e.latlng));
    // Keyboard: the map pans with the arrow keys; Enter puts the pin at its centre.
    $('map').addEventListener('keydown', (e) => {
      if (!this.active || (e.key !== 'Enter' && e.key !== ' ')) return;
      e.preventDefault();
      this.click(world.map.getCenter());
    });
    this.photos = loadExamples(new URL('game/', document.baseURI).href).catch(() => []);
    this.photos.then((list) => {
      $('game-source').textContent = list.length ? `${list.length} photos in this game’s set.` : '';
    });
  }

  get active() {
    return document.body.dataset.mode === 'game' && this.i >= 0 && this.i < this.rounds.length;
  }

  async start() {
    const all = await this.photos;
    if (!all.length) {
      this.status.set('game', 'No game photos here: start the app with `img2loc serve --game PHOTOS.csv` (or a folder of geotagged photos).', 'error');
      return;
    }
    this.rounds = spreadRounds(all, ROUNDS).map((p) => ({ photo: p }));
    this.i = -1;
    this.$('game-table').tBodies[0].replaceChildren();
    this.$('game-info').hidden = true;
    await this.next();
  }

  async next() {
    this.i++;
    this.pick = null;
    this.map.clear();
    this.map.home();
    this.$('game-guess').disabled = true;
    this.$('game-next').disabled = true;
    if (this.i >= this.rounds.length) return this.finish();
    const r = this.rounds[this.i];
    const $ = this.$;
    $('game-photo').hidden = true;
    $('game-pano').hidden = true;
    $('game-round').textContent = `Round ${this.i + 1} of ${this.rounds.length}: loading the photo…`;
    this.status.set('game', `Round ${this.i + 1} of ${this.rounds.length}`);
    // The model answers while the player looks; the same decoded pixels feed the 360° view.
    r.decoded = fetch(r.photo.url)
      .then((x) => {
        if (!x.ok) throw new Error(`the round’s photo could not be loaded (HTTP ${x.status})`);
        return x.blob();
      })
      .then((b) => this.app.read(b, `round ${this.i + 1}`));
    r.model = r.decoded.then((img) => this.app.infer(img)).then((p) => ({ ...decodeScore(p.probs, this.app.model.cells), panorama: p.panorama }));
    try {
      const img = await r.decoded;
      const pano = await r.model.then((m) => m.panorama);
      if (this.rounds[this.i] !== r) return; // a new game started meanwhile
      if (pano) {
        $('game-pano').hidden = false;
        this.viewer.show(img.rgb, img.width, img.height);
      } else {
        $('game-photo').src = r.photo.url;
        $('game-photo').hidden = false;
      }
      $('game-round').textContent = `Round ${this.i + 1} of ${this.rounds.length}: put your pin on the map, then Guess.`;
    } catch (e) {
      $('game-round').textContent = `Round ${this.i + 1}: ${e.message}. Skip it with Next round.`;
      this.status.set('game', `Round ${this.i + 1}: ${e.message}`, 'error');
      r.done = true;
      $('game-next').disabled = false;
    }
  }

  click(latlng) {
    if (this.rounds[this.i]?.done) return;
    this.pick = { lat: latlng.lat, lon: ((((latlng.lng + 180) % 360) + 360) % 360) - 180 };
    this.map.clear();
    this.pin = this.map.marker(latlng.lat, latlng.lng, 'you', { tip: 'your guess' });
    this.$('game-guess').disabled = false;
    this.$('game-round').textContent = `Round ${this.i + 1} of ${this.rounds.length}: pin placed. Move it, or press Guess.`;
  }

  async guess() {
    const r = this.rounds[this.i];
    if (!this.pick || r.done) return;
    r.done = true;
    this.$('game-guess').disabled = true;
    const m = await r.model;
    const t = r.photo;
    r.you = { ...this.pick, km: haversineKm(this.pick.lat, this.pick.lon, t.lat, t.lon) };
    r.you.score = Math.round(geoguessrScore(r.you.km));
    r.ai = { lat: m.lat, lon: m.lon, km: haversineKm(m.lat, m.lon, t.lat, t.lon) };
    r.ai.score = Math.round(geoguessrScore(r.ai.km));
    this.review(r);
    this.$('game-next').disabled = false;
    this.$('game-next').textContent = this.i + 1 < this.rounds.length ? 'Next round' : 'Final score';
    this.$('game-next').focus();
  }

  review(r) {
    const t = r.photo;
    const m = this.map;
    m.clear();
    m.marker(t.lat, t.lon, 'truth', { tip: 'true position' });
    m.marker(r.you.lat, r.you.lon, 'you', { tip: `you: ${fmtKm(r.you.km)}, ${r.you.score} points` });
    m.marker(r.ai.lat, r.ai.lon, 'model', { tip: `model: ${fmtKm(r.ai.km)}, ${r.ai.score} points` });
    m.line([t.lat, t.lon], [r.you.lat, r.you.lon]);
    m.line([t.lat, t.lon], [r.ai.lat, r.ai.lon]);
    m.fit([[t.lat, t.lon], [r.you.lat, r.you.lon], [r.ai.lat, r.ai.lon]], 10);
    const text = `Round ${this.i + 1}: you ${fmtKm(r.you.km)} away (${r.you.score} points), model ${fmtKm(r.ai.km)} away (${r.ai.score}).`;
    this.$('game-round').textContent = text;
    this.status.set('game', text, 'ok');
    const tr = document.createElement('tr');
    for (const v of [this.i + 1, `${r.you.score} (${fmtKm(r.you.km)})`, `${r.ai.score} (${fmtKm(r.ai.km)})`]) {
      const td = document.createElement('td');
      td.textContent = String(v);
      tr.append(td);
    }
    this.$('game-table').tBodies[0].append(tr);
  }

  finish() {
    const you = this.rounds.reduce((s, r) => s + (r.you?.score ?? 0), 0);
    const ai = this.rounds.reduce((s, r) => s + (r.ai?.score ?? 0), 0);
    this.totals = { you, model: ai };
    const max = 5000 * this.rounds.length;
    const text = `Final: you ${you} / ${max}, model ${ai} / ${max}. ${you > ai ? 'You win!' : you < ai ? 'The model wins.' : 'A draw.'}`;
    this.$('game-round').textContent = text;
    this.status.set('game', text, 'ok');
    this.$('game-photo').hidden = true;
    this.$('game-pano').hidden = true;
    this.$('game-next').textContent = 'Next round';
    this.$('game-info').hidden = false;
    this.i = this.rounds.length;
  }

  enter() {}

  leave() {}
}
