// A 360° panorama as a view the player can turn: drag, swipe, arrow keys or the buttons.
// Rendered with the same gnomonic projection the model's views use (panorama.js).
import { panoWidthFor, renderView } from './panorama.js';
import { resize } from './preprocess.js';

const FOV = 90;

export class PanoViewer {
  /** `canvas`: where to draw; `caption`: element that tells the heading. */
  constructor(canvas, caption) {
    this.canvas = canvas;
    this.caption = caption;
    this.heading = 0;
    this.pano = null;
    this.out = null;
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, h: this.heading };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const degPerPx = FOV / canvas.getBoundingClientRect().width;
      this.turn(drag.h - (e.clientX - drag.x) * degPerPx - this.heading);
    });
    const end = () => (drag = null);
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    canvas.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft') this.turn(-15);
      else if (e.key === 'ArrowRight') this.turn(15);
      else return;
      e.preventDefault();
    });
  }

  /** Show an RGB panorama (w x h), looking at its centre. */
  show(rgb, w, h) {
    const cw = this.canvas.width;
    // Downscale once to the width the view needs: turning stays smooth on a phone.
    const need = panoWidthFor(cw, FOV);
    if (w > need) {
      const nh = Math.max(2, Math.round((need * h) / w));
      this.pano = { data: resize(rgb, w, h, need, nh, 'box'), w: need, h: nh };
    } else this.pano = { data: rgb, w, h };
    this.heading = 0;
    this.draw();
  }

  turn(deg) {
    if (!this.pano) return;
    this.heading = (((this.heading + deg) % 360) + 360) % 360;
    this.draw();
  }

  draw() {
    const { width, height } = this.canvas;
    this.out ??= new Uint8Array(width * height * 3);
    renderView(this.pano.data, this.pano.w, this.pano.h, this.heading, FOV, width, height, this.out);
    const img = new ImageData(width, height);
    for (let i = 0, j = 0; i < width * height; i++, j += 3) {
      img.data[i * 4] = this.out[j];
      img.data[i * 4 + 1] = this.out[j + 1];
      img.data[i * 4 + 2] = this.out[j + 2];
      img.data[i * 4 + 3] = 255;
    }
    this.canvas.getContext('2d').putImageData(img, 0, 0);
    const dir = ['ahead', 'right', 'behind', 'left'][Math.round(this.heading / 90) % 4];
    this.caption.textContent = `360° view: looking ${dir} (${Math.round(this.heading)}°). Drag, swipe or use ← → to turn.`;
  }
}
