// Game mode: five rounds on photos with known positions; the human clicks a guess, the model
// guesses (score-optimal rule), both scored with GeoGuessr's formula.
import { decodeScore, geoguessrScore, haversineKm } from './decode.js';
import { loadExamples } from './examples.js';

export const ROUNDS = 5;

function shuffle(a, rnd = Math.random) {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export class Game {
  constructor({ app, map, $, status, fmtKm }) {
    Object.assign(this, { app, map, $, status, fmtKm });
    this.rounds = [];
    this.i = -1;
    this.pick = null;
    $('game-start').addEventListener('click', () => this.start());
    $('game-guess').addEventListener('click', () => this.guess());
    $('game-next').addEventListener('click', () => this.next());
    map.map.on('click', (e) => this.click(e.latlng));
  }

  get active() {
    return !this.$('tab-game').hidden && this.i >= 0 && this.i < this.rounds.length;
  }

  /** Photos of the game: the server's --game-data set when there is one, else the examples. */
  async photos() {
    const own = await loadExamples(new URL('game/', document.baseURI).href).catch(() => []);
    return own.length ? own : await this.app.examples;
  }

  async start() {
    const all = await this.photos();
    if (!all.length) {
      this.status('No game photos: start the app with `img2loc serve --game-data MANIFEST`', 'error');
      return;
    }
    this.rounds = shuffle([...all]).slice(0, ROUNDS).map((p) => ({ photo: p }));
    this.i = -1;
    this.$('game-table').tBodies[0].replaceChildren();
    await this.next();
  }

  async next() {
    this.i++;
    this.pick = null;
    this.map.clear();
    this.$('game-guess').disabled = true;
    this.$('game-next').disabled = true;
    if (this.i >= this.rounds.length) return this.finish();
    const r = this.rounds[this.i];
    this.$('game-photo').src = r.photo.url;
    this.$('game-photo').hidden = false;
    this.$('game-round').textContent = `Round ${this.i + 1} of ${this.rounds.length}: click where you think this is, then Guess.`;
    this.map.map.setView([25, 10], 1.5, { animate: false });
    // The model answers while the human looks.
    r.model = fetch(r.photo.url)
      .then((x) => x.blob())
      .then((b) => this.app.probabilities(b))
      .then((p) => decodeScore(p.probs, this.app.model.cells));
  }

  click(latlng) {
    if (!this.active || this.rounds[this.i].done) return;
    this.pick = { lat: latlng.lat, lon: ((((latlng.lng + 180) % 360) + 360) % 360) - 180 };
    this.map.clear();
    this.map.marker(latlng.lat, latlng.lng, 'you', 'Y', 'your guess');
    this.$('game-guess').disabled = false;
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
  }

  review(r) {
    const t = r.photo;
    this.map.clear();
    this.map.marker(t.lat, t.lon, 'truth', '✓', 'true position');
    this.map.marker(r.you.lat, r.you.lon, 'you', 'Y', `you: ${this.fmtKm(r.you.km)}, ${r.you.score} points`);
    this.map.marker(r.ai.lat, r.ai.lon, 'guess', 'M', `model: ${this.fmtKm(r.ai.km)}, ${r.ai.score} points`);
    this.map.line([t.lat, t.lon], [r.you.lat, r.you.lon]);
    this.map.line([t.lat, t.lon], [r.ai.lat, r.ai.lon]);
    this.map.fit([[t.lat, t.lon], [r.you.lat, r.you.lon], [r.ai.lat, r.ai.lon]], 10);
    this.$('game-round').textContent = `Round ${this.i + 1}: you ${this.fmtKm(r.you.km)} away (${r.you.score}), model ${this.fmtKm(r.ai.km)} away (${r.ai.score}).`;
    const tr = document.createElement('tr');
    for (const v of [this.i + 1, `${r.you.score} (${this.fmtKm(r.you.km)})`, `${r.ai.score} (${this.fmtKm(r.ai.km)})`]) {
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
    this.$('game-round').textContent = `Final: you ${you} / ${max}, model ${ai} / ${max}. ${you > ai ? 'You win!' : you < ai ? 'The model wins.' : 'A draw.'}`;
    this.$('game-photo').hidden = true;
    this.$('game-next').textContent = 'Next round';
    this.i = this.rounds.length;
  }
}
