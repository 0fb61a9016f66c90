// @ts-check
// The practice controls under the transport: the A–B loop (buttons, toggle, and a passage dragged
// across a waveform), tempo, key and master volume, and Reset. They drive the player and report
// every change (`changed`: the URL and the mix link follow). destroy() releases their listeners.

/** @typedef {import('./player.js').StemPlayer} StemPlayer */

/** @param {number} s */
export function formatTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest.toFixed(1).padStart(4, '0')}`;
}

/** @param {number} semitones */
const formatSemitones = (semitones) => (semitones === 0 ? '±0 st' : `${semitones > 0 ? '+' : '−'}${Math.abs(semitones)} st`);

/**
 * @typedef {object} PracticeElements
 * @property {HTMLInputElement} tempo @property {HTMLOutputElement} tempoOut
 * @property {HTMLInputElement} pitch @property {HTMLOutputElement} pitchOut
 * @property {HTMLInputElement} master @property {HTMLOutputElement} masterOut
 * @property {HTMLButtonElement} loopA @property {HTMLButtonElement} loopB @property {HTMLButtonElement} loopToggle
 * @property {HTMLElement} loopText @property {HTMLButtonElement} practiceReset
 */

export class PracticeControls {
  /**
   * @param {PracticeElements} el @param {StemPlayer} player
   * @param {{ say: (msg: string) => void, changed: () => void }} on
   */
  constructor(el, player, on) {
    this.el = el;
    this.player = player;
    this.on = on;
    /** @type {{ a: number | null, b: number | null }} the loop's ends as set (the loop plays when both are and Loop is on) */
    this.points = { a: null, b: null };
    /** @type {{ a: number, b: number } | null} a passage being dragged across a waveform */
    this.dragging = null;
    this.subscriptions = new AbortController();
    const { signal } = this.subscriptions;
    el.tempo.addEventListener('input', () => void this.setTempo(Number(el.tempo.value) / 100), { signal });
    el.pitch.addEventListener('input', () => void this.setPitch(Number(el.pitch.value)), { signal });
    el.master.addEventListener('input', () => this.setMaster(Number(el.master.value) / 100), { signal });
    el.loopA.addEventListener('click', () => {
      const t = player.currentTime;
      this.setLoop(t, this.points.b !== null && this.points.b > t ? this.points.b : null);
    }, { signal });
    el.loopB.addEventListener('click', () => {
      const t = player.currentTime;
      if (this.points.a === null || t <= this.points.a) this.setLoop(0, t, true);
      else this.setLoop(this.points.a, t, true);
    }, { signal });
    el.loopToggle.addEventListener('click', () => this.setLoop(this.points.a, this.points.b, el.loopToggle.getAttribute('aria-pressed') !== 'true'), { signal });
    el.practiceReset.addEventListener('click', () => this.reset(), { signal });
  }

  /**
   * @param {number | null} a @param {number | null} b
   * @param {boolean} [on] turn the loop on (or off); unchanged when absent
   */
  setLoop(a, b, on) {
    const { el, player } = this;
    this.points = { a, b };
    const complete = a !== null && b !== null && b - a >= 0.1;
    const active = complete && (on ?? el.loopToggle.getAttribute('aria-pressed') === 'true');
    el.loopToggle.disabled = !complete;
    el.loopToggle.setAttribute('aria-pressed', String(active));
    player.setLoop(active && a !== null && b !== null ? { a, b } : null);
    el.loopText.textContent = a === null && b === null
      ? 'Drag across a waveform to loop a passage.'
      : `A ${a === null ? '–' : formatTime(a)} · B ${b === null ? '–' : formatTime(b)}${active ? ' · looping' : ''}`;
    this.on.changed();
  }

  /** The loop to draw: a passage being dragged, the one playing, or the one set. */
  shownLoop() {
    const { a, b } = this.points;
    return this.dragging ?? this.player.loop ?? (a !== null && b !== null ? { a, b } : null);
  }

  /** @param {number} tempo 0.5..1.5 */
  async setTempo(tempo) {
    const pending = this.player.setTempo(tempo);
    this.el.tempo.value = String(Math.round(this.player.tempo * 100));
    this.el.tempoOut.value = `${Math.round(this.player.tempo * 100)} %`;
    await pending;
    if (this.player.shiftError) this.on.say(`Tempo changes the key here: the pitch shifter did not load (${this.player.shiftError}).`);
  }

  /** @param {number} semitones */
  async setPitch(semitones) {
    const pending = this.player.setPitch(semitones);
    this.el.pitch.value = String(this.player.pitch);
    this.el.pitchOut.value = formatSemitones(this.player.pitch);
    await pending;
    if (this.player.shiftError) this.on.say(`The key can’t be changed here: the pitch shifter did not load (${this.player.shiftError}).`);
  }

  /** @param {number} volume 0..1 */
  setMaster(volume) {
    this.player.setMasterVolume(volume);
    this.el.master.value = String(Math.round(this.player.masterVolume * 100));
    this.el.masterOut.value = `${Math.round(this.player.masterVolume * 100)} %`;
  }

  /** No loop, normal tempo and key, full master volume. */
  reset() {
    this.setLoop(null, null, false);
    void this.setTempo(1);
    void this.setPitch(0);
    this.setMaster(1);
  }

  destroy() {
    this.subscriptions.abort();
  }
}
