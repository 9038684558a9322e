// The world map: Natural Earth countries drawn offline (world-atlas), cell polygons shaded
// by probability, markers for guesses and truths. OSM tiles only when the user asks.
import L from 'leaflet';
import 'leaflet/dist/leaflet.css';
import { feature } from 'topojson-client';
import countriesUrl from 'world-atlas/countries-50m.json?url';

const dot = (cls, label) =>
  L.divIcon({ className: `pin ${cls}`, html: `<span>${label ?? ''}</span>`, iconSize: [18, 18], iconAnchor: [9, 9] });

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

export class WorldMap {
  constructor(el) {
    this.map = L.map(el, { worldCopyJump: true, minZoom: 1, maxZoom: 18, zoomSnap: 0.5, attributionControl: true })
      .setView([25, 10], 1.5);
    this.map.attributionControl.setPrefix(false);
    this.map.attributionControl.addAttribution('Natural Earth');
    this.layers = L.layerGroup().addTo(this.map);
    this.osm = null;
    this.ready = fetch(countriesUrl)
      .then((r) => r.json())
      .then((topo) => {
        const world = feature(topo, topo.objects.countries);
        for (const f of world.features) if (f.geometry) unwrap(f.geometry);
        L.geoJSON(world, {
          style: { color: '#8a8f98', weight: 0.6, fillColor: '#eef0e8', fillOpacity: 1 },
          interactive: false,
        }).addTo(this.map).bringToBack();
      });
  }

  setOsm(on) {
    if (on && !this.osm) {
      this.osm = L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
        maxZoom: 19,
        attribution: '© OpenStreetMap contributors',
        crossOrigin: true,
      }).addTo(this.map);
    } else if (!on && this.osm) {
      this.osm.remove();
      this.osm = null;
    }
  }

  clear() {
    this.layers.clearLayers();
  }

  /** Cells as polygons, opacity by probability relative to the largest. */
  cells(cells, items) {
    const pmax = Math.max(...items.map((t) => t.probability), 1e-12);
    for (const t of items) {
      const poly = cells.polygon[t.cell];
      if (!poly) continue;
      const a = t.probability / pmax;
      L.polygon(poly, { color: '#c0392b', weight: 1, fillColor: '#e74c3c', fillOpacity: 0.15 + 0.55 * a, opacity: 0.4 + 0.5 * a })
        .bindTooltip(`${t.place || t.token}: ${(100 * t.probability).toFixed(1)}%`)
        .addTo(this.layers);
    }
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

  marker(lat, lon, cls, label, tip) {
    const m = L.marker([lat, lon], { icon: dot(cls, label), keyboard: false }).addTo(this.layers);
    if (tip) m.bindTooltip(tip);
    return m;
  }

  line(a, b, cls) {
    L.polyline([a, b], { className: cls, color: '#333', weight: 1.5, dashArray: '4 4' }).addTo(this.layers);
  }

  fit(points, maxZoom = 8) {
    if (!points.length) return;
    this.map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom, animate: false });
  }
}
