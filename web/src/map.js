// The world map: Natural Earth countries drawn offline (world-atlas) with their names, cell
// polygons shaded by probability, pins for guesses and truths, a legend. OpenStreetMap
// tiles only when the user asks (and the page says when they cannot be loaded).
//
// Each mode (Locate, Game, Screen assist) draws into its own layer; only the active
// mode's layer is on the map, so no mode can overwrite another's pins.
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { feature } from 'topojson-client';
import countriesUrl from 'world-atlas/countries-50m.json?url';

const PIN = { guess: '★', truth: '✓', you: 'Y', model: 'M' };

const pin = (cls, label, text) =>
  L.divIcon({
    className: `pin ${cls}`,
    html: `<span class="dot" aria-hidden="true">${label ?? PIN[cls] ?? ''}</span>${text ? `<span class="pin-label"></span>` : ''}`,
    iconSize: [30, 30],
    iconAnchor: [15, 15],
  });

/** Make rings continuous across the antimeridian (lon may pass ±180) so Leaflet draws no
 * lines across the whole map. */
function unwrap(geometry) {
  const ring = (r) => {
    let off = 0;
    return r.map(([lon, lat], i) => {
      if (i > 0) {
        const d = lon - r[i - 1][0];
        if (d > 180) off -= 360;
        else if (d < -180) off += 360;
      }
      return [lon + off, lat];
    });
  };
  const poly = (rings) => rings.map(ring);
  if (geometry.type === 'Polygon') geometry.coordinates = poly(geometry.coordinates);
  else if (geometry.type === 'MultiPolygon') geometry.coordinates = geometry.coordinates.map(poly);
  return geometry;
}

/** Area (deg², planar) and centroid of a country's largest ring: where its label goes. */
function labelPoint(geometry) {
  const polys = geometry.type === 'Polygon' ? [geometry.coordinates] : geometry.coordinates;
  let best = null;
  for (const p of polys) {
    const r = p[0];
    let a = 0;
    let cx = 0;
    let cy = 0;
    for (let i = 0, j = r.length - 1; i < r.length; j = i++) {
      const f = r[j][0] * r[i][1] - r[i][0] * r[j][1];
      a += f;
      cx += (r[j][0] + r[i][0]) * f;
      cy += (r[j][1] + r[i][1]) * f;
    }
    if (Math.abs(a) < 1e-9) continue;
    const area = Math.abs(a / 2);
    if (!best || area > best.area) best = { area, lon: cx / (3 * a), lat: cy / (3 * a) };
  }
  return best;
}

/** What one mode has drawn: its own layer group and the view it last asked for. */
class ModeLayer {
  constructor(world, name) {
    this.world = world;
    this.name = name;
    this.group = L.layerGroup();
    this.view = null;
    this.legend = new Set();
  }

  get active() {
    return this.world.mode === this.name;
  }

  clear() {
    this.group.clearLayers();
    this.legend.clear();
    if (this.active) this.world.updateLegend();
  }

  /** Cells as polygons, opacity by probability relative to the largest. */
  cells(cells, items) {
    const pmax = Math.max(...items.map((t) => t.probability), 1e-12);
    for (const t of items) {
      const poly = cells.polygon[t.cell];
      if (!poly) continue;
      const a = t.probability / pmax;
      L.polygon(poly, { color: '#b03a2e', weight: 1, fillColor: '#e74c3c', fillOpacity: 0.12 + 0.5 * a, opacity: 0.35 + 0.5 * a })
        .bindTooltip(`${t.place || t.token}: ${(100 * t.probability).toFixed(1)}%`)
        .addTo(this.group);
    }
    this.note('heat');
  }

  /** Heatmap of a leaf distribution (all leaves above a small share of the maximum). */
  heat(cells, dist) {
    let m = 0;
    for (const v of dist) if (v > m) m = v;
    const items = [];
    for (let j = 0; j < dist.length; j++) {
      if (dist[j] >= m * 0.02) items.push({ cell: cells.leaves[j], token: cells.tokens[cells.leaves[j]], place: cells.place[cells.leaves[j]], probability: dist[j] });
    }
    items.sort((a, b) => b.probability - a.probability);
    this.cells(cells, items.slice(0, 300));
  }

  /** A pin; `text` is shown beside it (a place name), `tip` on hover and to screen readers. */
  marker(lat, lon, cls, { label, text, tip } = {}) {
    const m = L.marker([lat, lon], { icon: pin(cls, label, text), keyboard: false, title: tip ?? '', alt: tip ?? cls, riseOnHover: true }).addTo(this.group);
    if (text) {
      const el = m.getElement()?.querySelector('.pin-label');
      if (el) el.textContent = text;
      else m.on('add', () => (m.getElement().querySelector('.pin-label').textContent = text));
    }
    if (tip) m.bindTooltip(tip);
    this.note(cls);
    return m;
  }

  line(a, b) {
    L.polyline([a, b], { color: '#222', weight: 2, dashArray: '5 5', interactive: false }).addTo(this.group);
  }

  /** Frame points (now if this mode is on screen, else when it comes back). */
  fit(points, maxZoom = 8) {
    if (!points.length) return;
    this.view = { bounds: L.latLngBounds(points).pad(0.3), maxZoom };
    if (this.active) this.world.applyView(this.view);
  }

  home() {
    this.view = null;
    if (this.active) this.world.applyView(null);
  }

  note(kind) {
    this.legend.add(kind);
    if (this.active) this.world.updateLegend();
  }
}

const LEGEND = [
  ['guess', 'model’s guess'],
  ['model', 'model’s guess'],
  ['you', 'your guess'],
  ['truth', 'true position'],
  ['heat', 'likely regions (darker: more likely)'],
];

export class WorldMap {
  constructor(el) {
    this.el = el;
    this.map = L.map(el, { worldCopyJump: true, minZoom: 1, maxZoom: 18, zoomSnap: 0.5, attributionControl: true, keyboardPanDelta: 120 }).setView([25, 10], 1.5);
    this.map.attributionControl.setPrefix(false);
    this.map.attributionControl.addAttribution('Natural Earth');
    this.modes = new Map();
    this.mode = null;
    this.osm = null;
    this.labels = L.layerGroup().addTo(this.map);
    this.legendEl = L.DomUtil.create('div', 'legend');
    this.legendEl.setAttribute('aria-label', 'legend');
    const Legend = L.Control.extend({ onAdd: () => this.legendEl });
    new Legend({ position: 'bottomleft' }).addTo(this.map);
    // The map's box can change after Leaflet measured it (stylesheet applied late, as seen
    // on a first visit in WebKit; the phone layout growing the card): re-measure every time.
    new ResizeObserver(() => this.map.invalidateSize({ pan: false })).observe(el);
    this.onOsmStatus = () => {};
    this.ready = fetch(countriesUrl)
      .then((r) => r.json())
      .then((topo) => {
        const world = feature(topo, topo.objects.countries);
        for (const f of world.features) if (f.geometry) unwrap(f.geometry);
        this.countries = L.geoJSON(world, { style: this.countryStyle(), interactive: false }).addTo(this.map).bringToBack();
        this.placeLabels = world.features
          .filter((f) => f.geometry && f.properties?.name)
          .map((f) => ({ name: f.properties.name, ...labelPoint(f.geometry) }))
          .filter((p) => Number.isFinite(p.lat))
          .sort((a, b) => b.area - a.area);
        this.map.on('zoomend moveend', () => this.drawLabels());
        this.drawLabels();
      });
  }

  countryStyle() {
    // Over OpenStreetMap tiles, only faint borders: an opaque fill would hide the tiles.
    return this.osm ? { color: '#555', weight: 0.5, fillOpacity: 0, opacity: 0.4 } : { color: '#8a8f98', weight: 0.6, fillColor: '#eef0e8', fillOpacity: 1 };
  }

  /** Country names, the bigger countries first as the map zooms in (none over OSM tiles). */
  drawLabels() {
    this.labels.clearLayers();
    if (this.osm || !this.placeLabels) return;
    const z = this.map.getZoom();
    const minArea = 220 / 4 ** Math.max(0, z - 1.5);
    const view = this.map.getBounds().pad(0.1);
    let n = 0;
    for (const p of this.placeLabels) {
      if (p.area < minArea || n >= 80) break;
      if (!view.contains([p.lat, p.lon])) continue;
      n++;
      L.marker([p.lat, p.lon], {
        icon: L.divIcon({ className: 'place-label', html: '', iconSize: null }),
        interactive: false,
        keyboard: false,
      })
        .addTo(this.labels)
        .getElement().textContent = p.name;
    }
  }

  /** The layer a mode draws into (created on first use). */
  layer(name) {
    if (!this.modes.has(name)) this.modes.set(name, new ModeLayer(this, name));
    return this.modes.get(name);
  }

  /** Show one mode's layer and view, hide the others. */
  activate(name) {
    this.mode = name;
    for (const [n, m] of this.modes) {
      if (n === name) m.group.addTo(this.map);
      else m.group.remove();
    }
    this.applyView(this.layer(name).view);
    this.updateLegend();
  }

  applyView(view) {
    this.map.invalidateSize({ pan: false });
    if (view) this.map.fitBounds(view.bounds, { maxZoom: view.maxZoom, animate: false });
    else this.map.setView([25, 10], 1.5, { animate: false });
  }

  updateLegend() {
    const kinds = this.mode ? this.layer(this.mode).legend : new Set();
    this.legendEl.replaceChildren(
      ...LEGEND.filter(([k]) => kinds.has(k)).map(([kind, text]) => {
        const row = document.createElement('div');
        const sym = document.createElement('span');
        sym.className = kind === 'heat' ? 'swatch' : `key ${kind}`;
        if (kind !== 'heat') sym.textContent = PIN[kind];
        row.append(sym, document.createTextNode(` ${text}`));
        return row;
      }),
    );
    this.legendEl.hidden = kinds.size === 0;
  }

  /** OpenStreetMap tiles on or off; `onOsmStatus(text)` hears when they fail to load. */
  setOsm(on) {
    if (on && !this.osm) {
      let loaded = 0;
      this.osm = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
        maxZoom: 19,
        attribution: '© OpenStreetMap contributors',
        crossOrigin: true,
      });
      this.osm.on('tileload', () => {
        loaded++;
        this.onOsmStatus('');
      });
      this.osm.on('tileerror', () => {
        if (!loaded) this.onOsmStatus(`OpenStreetMap tiles could not be loaded (${navigator.onLine ? 'blocked or unreachable' : 'this device is offline'}); the offline map stays.`);
      });
      this.osm.addTo(this.map).bringToBack();
      if (!navigator.onLine) this.onOsmStatus('This device is offline: OpenStreetMap tiles need a network; the offline map stays.');
      else this.onOsmStatus('Loading OpenStreetMap tiles…');
    } else if (!on && this.osm) {
      this.osm.remove();
      this.osm = null;
      this.onOsmStatus('');
    }
    this.countries?.setStyle(this.countryStyle());
    this.drawLabels();
  }
}
