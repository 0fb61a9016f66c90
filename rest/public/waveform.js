// @ts-check
// Waveforms drawn from the decoded AudioBuffer: peaks are computed once, the two layers
// (unplayed, played) are cached per canvas size, and each frame only composites them. While a
// song is being separated its peaks grow piece by piece (`addPeaks`, `Waveform.update`) and the
// part not separated yet is drawn as an empty, hatched track.

export const COLUMNS = 1600;

/**
 * Adds the peaks of `channels` (frames from `startFrame`) to `peaks`, whose columns span
 * `totalFrames` frames (a growing song's peaks, one piece at a time).
 * @param {Float32Array} peaks
 * @param {readonly Float32Array[]} channels
 * @param {number} startFrame
 * @param {number} totalFrames
 */
export function addPeaks(peaks, channels, startFrame, totalFrames) {
  const columns = peaks.length;
  const n = channels[0]?.length ?? 0;
  if (n === 0 || totalFrames <= 0) return;
  const firstCol = Math.floor((startFrame * columns) / totalFrames);
  const lastCol = Math.min(columns - 1, Math.floor(((startFrame + n - 1) * columns) / totalFrames));
  for (let col = firstCol; col <= lastCol; col++) {
    const from = Math.max(0, Math.ceil((col * totalFrames) / columns) - startFrame);
    const to = Math.min(n, Math.ceil(((col + 1) * totalFrames) / columns) - startFrame);
    let peak = peaks[col];
    for (const data of channels) {
      for (let i = from; i < to; i++) {
        const v = data[i] < 0 ? -data[i] : data[i];
        if (v > peak) peak = v;
      }
    }
    peaks[col] = peak;
  }
}

/**
 * Max |sample| per column, over all channels.
 * @param {AudioBuffer} buffer
 * @param {number} [columns]
 */
export function computePeaks(buffer, columns = COLUMNS) {
  const peaks = new Float32Array(columns);
  const per = buffer.length / columns;
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const data = buffer.getChannelData(c);
    for (let col = 0; col < columns; col++) {
      const start = Math.floor(col * per);
      const end = Math.min(data.length, Math.floor((col + 1) * per));
      let peak = peaks[col];
      for (let i = start; i < end; i++) {
        const v = data[i] < 0 ? -data[i] : data[i];
        if (v > peak) peak = v;
      }
      peaks[col] = peak;
    }
  }
  return peaks;
}

/** `#rrggbb` → `rgba(r,g,b,a)`; other colour syntaxes are returned unchanged. @param {string} hex @param {number} alpha */
function withAlpha(hex, alpha) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) return hex;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
}

export class Waveform {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {Float32Array} peaks
   * @param {string} color CSS colour of the played part
   * @param {number} duration of this stem, s
   */
  constructor(canvas, peaks, color, duration) {
    this.canvas = canvas;
    this.peaks = peaks;
    this.color = color;
    this.stemDuration = duration;
    /** @type {HTMLCanvasElement | null} */
    this.dim = null;
    /** @type {HTMLCanvasElement | null} */
    this.bright = null;
    this.lastKey = '';
    this.observer = new ResizeObserver(() => {
      this.dim = null;
      this.lastKey = '';
    });
    this.observer.observe(canvas);
  }

  destroy() {
    this.observer.disconnect();
  }

  /**
   * New peaks (more of a growing song, or the finished stem's): the layers are redrawn.
   * @param {Float32Array} peaks @param {number} duration
   */
  update(peaks, duration) {
    this.peaks = peaks;
    this.stemDuration = duration;
    this.dim = null;
    this.lastKey = '';
  }

  /** @param {string} fill */
  layer(fill) {
    const { width, height } = this.canvas;
    const layer = document.createElement('canvas');
    layer.width = width;
    layer.height = height;
    const g = /** @type {CanvasRenderingContext2D} */ (layer.getContext('2d'));
    g.fillStyle = fill;
    const dpr = window.devicePixelRatio || 1;
    const bar = Math.max(1, Math.round(2 * dpr));
    const gap = Math.max(1, Math.round(1 * dpr));
    const mid = height / 2;
    // Normalise so quiet stems are still readable, but by at most +18 dB so near-silence stays flat.
    let max = 0;
    for (const p of this.peaks) if (p > max) max = p;
    const scale = max > 0 ? Math.min(1 / max, 8) : 1;
    for (let x = 0; x < width; x += bar + gap) {
      const from = Math.floor((x / width) * this.peaks.length);
      const to = Math.max(from + 1, Math.floor(((x + bar) / width) * this.peaks.length));
      let p = 0;
      for (let i = from; i < to && i < this.peaks.length; i++) if (this.peaks[i] > p) p = this.peaks[i];
      const h = Math.max(dpr, Math.min(1, p * scale) * (height - 2 * dpr));
      g.fillRect(x, mid - h / 2, bar, h);
    }
    return layer;
  }

  ensureSize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h || !this.dim) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.dim = this.layer(withAlpha(this.color, 0.32));
      this.bright = this.layer(this.color);
      this.lastKey = '';
    }
  }

  /**
   * @param {number} time playback position, s
   * @param {number} total song duration (longest stem), s
   * @param {{ a: number, b: number } | null} [loop] the A–B loop (or a selection being dragged), s
   * @param {number} [ready] seconds separated so far (the rest is drawn as not there yet)
   */
  draw(time, total, loop = null, ready = total) {
    this.ensureSize();
    const { width, height } = this.canvas;
    const x = total > 0 ? Math.round((Math.min(time, total) / total) * width) : 0;
    const lx = loop && total > 0 ? [Math.round((loop.a / total) * width), Math.round((loop.b / total) * width)] : null;
    // A stem shorter than the song is drawn over its own share of the width.
    const w = total > 0 ? Math.round((this.stemDuration / total) * width) : width;
    // Of it, the part separated so far.
    const rx = total > 0 && ready < total ? Math.min(w, Math.round((Math.max(0, ready) / total) * width)) : w;
    const key = `${width}x${height}@${x}:${lx ? lx.join('-') : ''}:${rx}`;
    if (key === this.lastKey) return;
    this.lastKey = key;
    const g = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext('2d'));
    g.clearRect(0, 0, width, height);
    if (rx < w) {
      // Not separated yet: diagonal hatching.
      g.save();
      g.beginPath();
      g.rect(rx, 0, w - rx, height);
      g.clip();
      g.fillStyle = 'rgba(255, 255, 255, 0.06)';
      const step = Math.max(4, Math.round(8 * (window.devicePixelRatio || 1)));
      g.beginPath();
      for (let sx = rx - height; sx < w; sx += step) {
        g.moveTo(sx, height);
        g.lineTo(sx + height, 0);
        g.lineTo(sx + height + step / 2, 0);
        g.lineTo(sx + step / 2, height);
        g.closePath();
      }
      g.fill();
      g.restore();
    }
    if (rx > 0) g.drawImage(/** @type {HTMLCanvasElement} */ (this.dim), 0, 0, (rx / w) * width, height, 0, 0, rx, height);
    if (x > 0) {
      const sx = Math.min(x, rx);
      g.drawImage(/** @type {HTMLCanvasElement} */ (this.bright), 0, 0, (sx / w) * width, height, 0, 0, sx, height);
    }
    if (lx) {
      g.fillStyle = 'rgba(138, 180, 255, 0.22)';
      g.fillRect(lx[0], 0, Math.max(1, lx[1] - lx[0]), height);
      g.fillStyle = 'rgba(138, 180, 255, 0.9)';
      g.fillRect(lx[0], 0, 2, height);
      g.fillRect(Math.max(0, lx[1] - 2), 0, 2, height);
    }
    g.fillStyle = '#ffffff';
    g.fillRect(Math.min(x, width - 2), 0, Math.max(1, Math.round(window.devicePixelRatio || 1)), height);
  }
}
