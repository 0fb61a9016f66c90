// @ts-check
// The mixer's state in the page's URL (`#<hash>?<mix>`, mixstate.js): read once the open song's
// stems are in (until then nothing may overwrite it), written back — replacing, not adding history —
// a moment after each change, when the mix link follows too.
import { formatFragment, parseFragment } from './mixstate.js';

/** @typedef {import('./mixstate.js').MixState} MixState */
/** @typedef {import('./api.js').Stem} Stem */

/** How long the URL waits for changes to settle (ms). */
const SETTLE_MS = 150;

export class UrlMix {
  /**
   * @param {{ mix: () => MixState, apply: (mix: MixState) => void, written: (hash: string, mix: MixState) => void }} on
   * the mixer's state now; set the mixer to a mix; the URL was written
   */
  constructor(on) {
    this.on = on;
    this.read = false;
    this.timer = 0;
  }

  /** The URL's mix for `hash`, applied (the stems are in). @param {string | null} hash @param {readonly Stem[]} stems */
  apply(hash, stems) {
    this.read = true;
    const parsed = parseFragment(location.hash, stems);
    if (parsed.mix && parsed.hash === hash) this.on.apply(parsed.mix);
  }

  /**
   * Writes the mix of `hash` into the URL once changes settle (nothing before the URL's own was read).
   * @param {string | null} hash @param {readonly Stem[]} stems @param {() => boolean} playable
   */
  schedule(hash, stems, playable) {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => {
      if (!hash || !playable() || !this.read) return;
      const mix = this.on.mix();
      const fragment = formatFragment(hash, mix, stems);
      if (location.hash !== fragment) history.replaceState(null, '', fragment);
      this.on.written(hash, mix);
    }, SETTLE_MS);
  }

  /** Another song: its URL mix is not read yet. */
  reset() {
    this.read = false;
    window.clearTimeout(this.timer);
  }

  destroy() {
    window.clearTimeout(this.timer);
  }
}
