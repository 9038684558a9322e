// Screen assist: grab views of a GeoGuessr round from a shared screen, crop the game's UI
// away, average the views' probabilities and show the score-optimal guess.
import { meanProbs, summarize } from './decode.js';
import { grabFrame } from './image.js';

export class Assist {
  constructor({ app, map, $, status }) {
    Object.assign(this, { app, map, $, status });
    this.here = false;
    this.views = [];
    this.video = document.createElement('video');
    this.video.muted = true;
    this.video.playsInline = true;
    this.timer = null;
    $('assist-share').addEventListener('click', () => this.share());
    $('assist-grab').addEventListener('click', () => this.grab());
    $('assist-new').addEventListener('click', () => this.newRound());
    $('assist-every').addEventListener('change', () => this.schedule());
    for (const k of ['top', 'bottom', 'left', 'right']) $(`crop-${k}`).addEventListener('change', () => this.preview());
    addEventListener('keydown', (e) => {
      if (e.key.toLowerCase() === 'g' && !$('tab-assist').hidden && !(e.target instanceof HTMLInputElement)) this.grab();
    });
  }

  async share() {
    if (!navigator.mediaDevices?.getDisplayMedia) {
      this.status.set('assist', 'This browser cannot share a screen (phones cannot); use a desktop browser.', 'error');
      return;
    }
    try {
      await this.useStream(await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 5 }, audio: false }));
    } catch (e) {
      this.status.set('assist', e.name === 'NotAllowedError' ? 'Screen sharing was cancelled.' : `Screen sharing could not start (${e.message}).`, 'error');
    }
  }

  /** Use a MediaStream (a shared screen, or a canvas stream in tests). */
  async useStream(stream) {
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = stream;
    this.video.srcObject = stream;
    await this.video.play();
    await new Promise((ok) => (this.video.videoWidth ? ok() : this.video.addEventListener('loadedmetadata', ok, { once: true })));
    stream.getVideoTracks()[0]?.addEventListener('ended', () => this.stop());
    this.$('assist-grab').disabled = false;
    this.status.set('assist', 'Sharing: grab views with the button or the G key.', 'ok');
    this.preview();
    this.schedule();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.stream = null;
    this.$('assist-grab').disabled = true;
    this.status.set('assist', 'Screen sharing ended.');
  }

  crop() {
    const w = this.video.videoWidth;
    const h = this.video.videoHeight;
    const pc = (k) => Math.min(90, Math.max(0, Number(this.$(`crop-${k}`).value) || 0)) / 100;
    const x = Math.round(w * pc('left'));
    const y = Math.round(h * pc('top'));
    return { x, y, w: Math.max(1, Math.round(w * (1 - pc('right'))) - x), h: Math.max(1, Math.round(h * (1 - pc('bottom'))) - y) };
  }

  preview() {
    if (!this.video.videoWidth) return;
    const c = this.crop();
    const cv = this.$('assist-canvas');
    cv.height = Math.round((cv.width * c.h) / c.w);
    cv.getContext('2d').drawImage(this.video, c.x, c.y, c.w, c.h, 0, 0, cv.width, cv.height);
  }

  /** The automatic grab runs only while this tab is shown (it pauses, visibly, elsewhere). */
  schedule() {
    clearInterval(this.timer);
    const s = Number(this.$('assist-every').value);
    const want = s > 0 && this.stream;
    this.timer = want && this.here ? setInterval(() => this.grab(), s * 1000) : null;
    // Said on the tab itself, where a user in another mode sees it.
    const tab = this.$('tab-btn-assist');
    const paused = want && !this.here;
    tab.textContent = paused ? 'Screen assist (paused)' : 'Screen assist';
    tab.title = paused ? `Automatic grabbing every ${s} s is paused while you are in another mode; it resumes on this tab.` : '';
  }

  enter() {
    this.here = true;
    this.schedule();
  }

  leave() {
    this.here = false;
    this.schedule();
  }

  async grab() {
    if (!this.video.videoWidth || this.grabbing) return null;
    this.grabbing = true;
    try {
      this.preview();
      const r = await this.app.infer(grabFrame(this.video, this.crop()));
      this.views.push(r.probs);
      return this.show();
    } catch (e) {
      this.status.set('assist', e.message, 'error');
      return null;
    } finally {
      this.grabbing = false;
    }
  }

  show() {
    const cells = this.app.model.cells;
    const res = summarize(meanProbs(this.views, cells.n), cells, { rule: 'score', topK: 5 });
    this.map.clear();
    this.map.heat(cells, res.dist);
    this.map.marker(res.lat, res.lon, 'guess', { text: res.place || res.token, tip: `score-optimal guess: expected ${Math.round(res.expected)} points` });
    this.map.fit([[res.lat, res.lon], ...res.top.slice(0, 3).map((t) => [t.lat, t.lon])], 6);
    const text = `${this.views.length} view${this.views.length > 1 ? 's' : ''}: guess near ${res.place || res.token}, expected score ${Math.round(res.expected)}`;
    this.$('assist-answer').textContent = text;
    this.status.set('assist', text, 'ok');
    this.last = { views: this.views.length, lat: res.lat, lon: res.lon, expected: res.expected, place: res.place };
    return this.last;
  }

  newRound() {
    this.views = [];
    this.last = null;
    this.map.clear();
    this.map.home();
    this.$('assist-answer').textContent = '';
    this.status.set('assist', this.stream ? 'New round: grab views.' : '');
  }
}
