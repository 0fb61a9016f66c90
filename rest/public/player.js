// @ts-check
// Plays the stems of one song in sample-accurate sync with the Web Audio API: every stem is
// an AudioBuffer, all sources start at the same context time and offset, and position is
// computed from the AudioContext clock rather than from timers.

/** @typedef {import('./api.js').Track} Track */
/**
 * @typedef {object} Stem
 * @property {Track} name
 * @property {AudioBuffer} buffer
 * @property {GainNode} gain volume × mute/solo
 * @property {AnalyserNode} analyser for the level meter
 * @property {AudioBufferSourceNode | null} source
 * @property {number} volume 0..1 as set by the user
 * @property {boolean} muted
 * @property {boolean} soloed
 * @property {number} target the gain the node is heading to (0 when silenced)
 */

/** Start a little in the future so every source is scheduled before the first one sounds. */
const START_LEAD_S = 0.05;
/** Smoothing for gain changes, so muting does not click. */
const GAIN_RAMP_S = 0.012;

export class StemPlayer {
  constructor() {
    /** @type {AudioContext | null} */
    this.ctx = null;
    /** @type {GainNode | null} */
    this.master = null;
    /** @type {Map<Track, Stem>} */
    this.stems = new Map();
    this.duration = 0;
    this.playing = false;
    /** Position (s) while paused, or the position at `startedAt` while playing. */
    this.offset = 0;
    /** AudioContext time at which `offset` is heard. */
    this.startedAt = 0;
    /** Bumped on every (re)start so stale `ended` events are ignored. */
    this.generation = 0;
    /** @type {() => void} */
    this.onchange = () => {};
  }

  /** One AudioContext for the page's lifetime. */
  context() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ latencyHint: 'playback' });
      this.master = this.ctx.createGain();
      this.master.connect(this.ctx.destination);
    }
    return this.ctx;
  }

  /** Decodes one stem's MP3 bytes with the shared context. @param {ArrayBuffer} bytes */
  decode(bytes) {
    return this.context().decodeAudioData(bytes);
  }

  /** @param {Track} name @param {AudioBuffer} buffer */
  addStem(name, buffer) {
    const ctx = this.context();
    const gain = ctx.createGain();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.smoothingTimeConstant = 0;
    gain.connect(analyser);
    analyser.connect(/** @type {GainNode} */ (this.master));
    /** @type {Stem} */
    const stem = { name, buffer, gain, analyser, source: null, volume: 1, muted: false, soloed: false, target: 1 };
    this.stems.set(name, stem);
    this.duration = Math.max(this.duration, buffer.duration);
    this.applyGains();
    if (this.playing) this.restart(this.currentTime);
  }

  /** @param {Track} name */
  removeStem(name) {
    const stem = this.stems.get(name);
    if (!stem) return;
    this.stopSource(stem);
    stem.gain.disconnect();
    stem.analyser.disconnect();
    this.stems.delete(name);
    this.duration = Math.max(0, ...[...this.stems.values()].map((s) => s.buffer.duration));
    if (this.offset > this.duration) this.offset = this.duration;
    if (this.stems.size === 0) this.pause();
    this.applyGains();
    this.onchange();
  }

  /** Drops every stem (the context is kept for the next song). */
  clear() {
    for (const name of [...this.stems.keys()]) this.removeStem(name);
    this.playing = false;
    this.offset = 0;
    this.duration = 0;
    this.onchange();
  }

  /** Playback position in seconds, from the audio clock. */
  get currentTime() {
    if (!this.playing || !this.ctx) return this.offset;
    const t = this.offset + (this.ctx.currentTime - this.startedAt);
    return Math.min(this.duration, Math.max(this.offset, t));
  }

  async play() {
    if (this.playing || this.stems.size === 0) return;
    const ctx = this.context();
    // Browsers create contexts suspended until a user gesture; Play is that gesture.
    if (ctx.state !== 'running') await ctx.resume();
    if (this.playing) return;
    if (this.offset >= this.duration - 0.01) this.offset = 0;
    this.startAll(this.offset);
    this.onchange();
  }

  pause() {
    if (!this.playing) return;
    const t = this.currentTime;
    this.generation++;
    for (const stem of this.stems.values()) this.stopSource(stem);
    this.playing = false;
    this.offset = t;
    this.onchange();
  }

  /** @param {number} seconds */
  seek(seconds) {
    const t = Math.min(Math.max(0, seconds), this.duration);
    if (this.playing) this.restart(t);
    else this.offset = t;
    this.onchange();
  }

  /** Stops playback at the end of the song; call from the UI loop. */
  tick() {
    if (this.playing && this.currentTime >= this.duration - 0.005) {
      this.pause();
      this.offset = this.duration;
      this.onchange();
    }
  }

  /** @param {Track} name @param {number} volume */
  setVolume(name, volume) {
    this.mix(name, { volume: Math.min(1, Math.max(0, volume)) });
  }

  /** @param {Track} name @param {boolean} muted */
  setMuted(name, muted) {
    this.mix(name, { muted });
  }

  /** @param {Track} name @param {boolean} soloed */
  setSoloed(name, soloed) {
    this.mix(name, { soloed });
  }

  /**
   * Changes a stem's mixer settings and applies the resulting gains.
   * @param {Track} name
   * @param {Partial<Pick<Stem, 'volume' | 'muted' | 'soloed'>>} settings
   */
  mix(name, settings) {
    const stem = this.stems.get(name);
    if (!stem) return;
    Object.assign(stem, settings);
    this.applyGains();
  }

  /** Whether a stem is heard: not muted, and soloed when any stem is. @param {Stem} stem */
  isAudible(stem) {
    const anySolo = [...this.stems.values()].some((s) => s.soloed);
    return !stem.muted && (!anySolo || stem.soloed);
  }

  applyGains() {
    const ctx = this.ctx;
    if (!ctx) return;
    for (const stem of this.stems.values()) {
      stem.target = this.isAudible(stem) ? stem.volume : 0;
      stem.gain.gain.cancelScheduledValues(ctx.currentTime);
      stem.gain.gain.setTargetAtTime(stem.target, ctx.currentTime, GAIN_RAMP_S);
    }
    this.onchange();
  }

  /**
   * Peak level of a stem right now, 0..1 (0 when paused).
   * @param {Stem} stem
   * @param {Float32Array<ArrayBuffer>} scratch length ≥ analyser.fftSize
   */
  level(stem, scratch) {
    if (!this.playing) return 0;
    stem.analyser.getFloatTimeDomainData(scratch);
    let peak = 0;
    for (let i = 0; i < stem.analyser.fftSize; i++) {
      const v = Math.abs(scratch[i]);
      if (v > peak) peak = v;
    }
    return peak;
  }

  /** @param {number} offset */
  startAll(offset) {
    const ctx = /** @type {AudioContext} */ (this.ctx);
    const when = ctx.currentTime + START_LEAD_S;
    const generation = ++this.generation;
    for (const stem of this.stems.values()) {
      const src = ctx.createBufferSource();
      src.buffer = stem.buffer;
      src.connect(stem.gain);
      if (offset < stem.buffer.duration) src.start(when, offset);
      src.addEventListener('ended', () => {
        if (generation === this.generation) this.tick();
      });
      stem.source = src;
    }
    this.offset = offset;
    this.startedAt = when;
    this.playing = true;
  }

  /** @param {number} offset */
  restart(offset) {
    this.generation++;
    for (const stem of this.stems.values()) this.stopSource(stem);
    this.startAll(offset);
  }

  /** @param {Stem} stem */
  stopSource(stem) {
    const src = stem.source;
    if (!src) return;
    stem.source = null;
    try {
      src.stop();
    } catch {
      /* never started (offset beyond this stem's end) */
    }
    src.disconnect();
  }
}
