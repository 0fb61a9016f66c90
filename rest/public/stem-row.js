// @ts-check
// One stem's row in the player: name, waveform (click to seek, drag across to loop a passage),
// level meter, volume (slider and percent), Mute/Solo, its download and Delete. The row only
// shows and reports; the mixer decides (handlers). destroy() releases every listener it added and
// takes the row out of the page.
import { pointStemLink, downloadWithKey, labelOf } from './downloads.js';
import { $, cloneRow, confirmTwice } from './ui.js';

/** @typedef {import('./api.js').Stem} Stem */
/** @typedef {import('./formats.js').StemFile} StemFile */

/** Pixels a pointer must move across a waveform before it selects a loop instead of seeking. */
const DRAG_PX = 6;
/** A stem whose loudest sample is below this (dBFS) is shown as silent rather than as a flat line. */
const SILENT_DBFS = -60;

/**
 * @typedef {object} StemRowHandlers
 * @property {(volume: number) => void} volume 0..1
 * @property {(on: boolean) => void} mute
 * @property {(on: boolean) => void} solo
 * @property {() => number} duration the song's length (0: nothing to seek in yet)
 * @property {(selection: { a: number, b: number } | null) => void} drag a passage being dragged across (null: dropped)
 * @property {(a: number, b: number) => void} select a passage chosen: loop it
 * @property {(t: number) => void} seek
 * @property {() => Promise<void>} remove Delete confirmed
 * @property {(msg: string) => void} say
 */

/**
 * A toggle button (`aria-pressed`) that reports its new state.
 * @param {HTMLButtonElement} button @param {(on: boolean) => void} onToggle @param {AbortSignal} signal
 */
function pressable(button, onToggle, signal) {
  button.addEventListener('click', () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-pressed', String(on));
    onToggle(on);
  }, { signal });
}

export class StemRow {
  /**
   * @param {HTMLTemplateElement} template @param {Stem} stem @param {string} color
   * @param {StemRowHandlers} on
   */
  constructor(template, stem, color, on) {
    this.stem = stem;
    this.subscriptions = new AbortController();
    const { signal } = this.subscriptions;
    const row = cloneRow(template);
    this.row = row;
    const label = labelOf(stem);
    row.dataset.track = stem;
    row.dataset.loaded = 'false';
    row.style.setProperty('--stem', color);
    $('.name', HTMLElement, row).textContent = label;
    this.canvas = $('canvas', HTMLCanvasElement, row);
    this.canvas.setAttribute('aria-label', `${label} waveform`);
    $('.vol-label', HTMLElement, row).textContent = `${label} volume`;
    this.vol = $('.vol-input', HTMLInputElement, row);
    this.vol.setAttribute('aria-valuetext', '100%');
    this.volNum = $('.vol-num', HTMLInputElement, row);
    this.volNum.setAttribute('aria-label', `${label} volume, percent`);
    const mute = $('.mute', HTMLButtonElement, row);
    mute.setAttribute('aria-label', `Mute ${label}`);
    const solo = $('.solo', HTMLButtonElement, row);
    solo.setAttribute('aria-label', `Solo ${label}`);
    this.link = $('.download', HTMLAnchorElement, row);
    const del = $('.delete', HTMLButtonElement, row);
    del.setAttribute('aria-label', `Delete the ${label} stem`);
    del.title = `Delete the ${label} stem`;
    del.dataset.confirm = `Click again to delete the ${label} stem`;
    this.meter = $('.meter-fill', HTMLElement, row);
    this.enable(false);

    this.vol.addEventListener('input', () => on.volume(Number(this.vol.value)), { signal });
    this.volNum.addEventListener('input', () => {
      if (this.volNum.value.trim() === '') return;
      const pct = Number(this.volNum.value);
      on.volume(Number.isFinite(pct) ? pct / 100 : 1);
    }, { signal });
    pressable(mute, on.mute, signal);
    pressable(solo, on.solo, signal);
    this.followPointer(on, signal);
    downloadWithKey(this.link, on.say, signal);
    confirmTwice(del, on.remove, signal);
  }

  /** Click: seek. Drag across: select a passage and loop it. @param {StemRowHandlers} on @param {AbortSignal} signal */
  followPointer(on, signal) {
    const canvas = this.canvas;
    /** @type {{ x: number, t: number, id: number } | null} */
    let press = null;
    /** @type {{ a: number, b: number } | null} */
    let selection = null;
    /** @param {PointerEvent} e */
    const timeAt = (e) => {
      const r = canvas.getBoundingClientRect();
      return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)) * on.duration();
    };
    canvas.addEventListener('pointerdown', (e) => {
      if (!on.duration()) return;
      press = { x: e.clientX, t: timeAt(e), id: e.pointerId };
      canvas.setPointerCapture(e.pointerId);
    }, { signal });
    canvas.addEventListener('pointermove', (e) => {
      if (!press || e.pointerId !== press.id || Math.abs(e.clientX - press.x) < DRAG_PX) return;
      const t = timeAt(e);
      selection = { a: Math.min(press.t, t), b: Math.max(press.t, t) };
      on.drag(selection);
    }, { signal });
    canvas.addEventListener('pointerup', (e) => {
      if (!press || e.pointerId !== press.id) return;
      const start = press;
      press = null;
      if (selection) {
        const sel = selection;
        selection = null;
        on.drag(null);
        on.select(sel.a, sel.b);
      } else {
        on.seek(start.t);
      }
    }, { signal });
    canvas.addEventListener('pointercancel', () => {
      press = null;
      selection = null;
      on.drag(null);
    }, { signal });
  }

  /** The file its download links (null: none yet). @param {StemFile | null} file @param {string} songName */
  setFile(file, songName) {
    this.file = file;
    this.row.dataset.format = file?.format.name ?? '';
    pointStemLink(this.link, this.stem, file, songName);
  }

  /** The song's name changed: the download's name follows. @param {string} songName */
  rename(songName) {
    if (this.file) pointStemLink(this.link, this.stem, this.file, songName);
  }

  /** @param {boolean} on */
  enable(on) {
    for (const c of this.row.querySelectorAll('input, button.toggle')) {
      /** @type {HTMLInputElement | HTMLButtonElement} */ (c).disabled = !on;
    }
  }

  /** @param {number} volume 0..1 */
  showVolume(volume) {
    this.vol.value = String(volume);
    this.vol.setAttribute('aria-valuetext', `${Math.round(volume * 100)}%`);
    this.volNum.value = String(Math.round(volume * 100));
  }

  /** @param {'mute' | 'solo'} which @param {boolean} on */
  showToggle(which, on) {
    $(`.${which}`, HTMLButtonElement, this.row).setAttribute('aria-pressed', String(on));
  }

  /** The level meter, from the stem's current level (0..1). @param {number} level */
  showLevel(level) {
    const db = level > 0 ? 20 * Math.log10(level) : -60;
    this.meter.style.transform = `scaleY(${Math.max(0, Math.min(1, (db + 48) / 48)).toFixed(3)})`;
  }

  /**
   * A stem that stays below SILENT_DBFS says “No vocals detected” (or its own name) instead of
   * drawing a flat line that looks broken.
   * @param {Float32Array} peaks
   */
  markSilence(peaks) {
    let peak = 0;
    for (const p of peaks) if (p > peak) peak = p;
    const db = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
    const silent = db < SILENT_DBFS;
    this.row.dataset.silent = String(silent);
    this.row.dataset.peakDb = Number.isFinite(db) ? db.toFixed(1) : '-inf';
    const note = $('.silent-note', HTMLElement, this.row);
    note.hidden = !silent;
    note.textContent = silent ? `No ${this.stem} detected` : '';
    this.canvas.setAttribute('aria-label', silent ? `${labelOf(this.stem)} waveform: no ${this.stem} detected (silent stem)` : `${labelOf(this.stem)} waveform`);
  }

  destroy() {
    this.subscriptions.abort();
    this.row.remove();
  }
}
