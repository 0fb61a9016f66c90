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
/** The practice ranges: tempo as a playback-rate factor, pitch in semitones. */
export const TEMPO_RANGE = { min: 0.5, max: 1.5 };
export const PITCH_RANGE = { min: -6, max: 6 };
/** Shortest A–B loop, s. */
export const MIN_LOOP_S = 0.1;
/** The time-stretch library's browser file (signalsmith-stretch, served by rest/src/vendor.ts). */
const STRETCH_URL = '/vendor/signalsmith-stretch.mjs';

/**
 * What signalsmith-stretch's node adds to an AudioWorkletNode (the parts used here).
 * @typedef {AudioWorkletNode & {
 *   start: (when?: number) => Promise<unknown>,
 *   schedule: (change: { output?: number, semitones?: number, active?: boolean }) => Promise<unknown>,
 *   latency: () => Promise<number>,
 * }} StretchNode
 */
/** @typedef {((ctx: BaseAudioContext, options?: AudioWorkletNodeOptions) => Promise<StretchNode>) & { moduleUrl?: string }} StretchFactory */

/** @type {Promise<StretchFactory> | null} */
let stretchFactory = null;

/** Loads the time-stretch library once (a same-origin ES module; its worklet is the same file). */
export function loadStretch() {
  if (!stretchFactory) {
    const url = STRETCH_URL;
    stretchFactory = import(url).then((mod) => {
      /** @type {StretchFactory} */
      const factory = mod.default;
      // Without this the library would load its worklet from a blob: URL, which the CSP forbids.
      factory.moduleUrl = url;
      return factory;
    });
    stretchFactory.catch(() => { stretchFactory = null; });
  }
  return stretchFactory;
}

/**
 * The pitch shift that keeps the key at `pitch` semitones while the sources play `tempo` times as fast
 * (a faster source is higher by 12·log2(tempo) semitones).
 * @param {number} tempo @param {number} pitch
 */
export const shiftFor = (tempo, pitch) => pitch - 12 * Math.log2(tempo);

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
    /** Master volume, 0..1. */
    this.masterVolume = 1;
    /** Playback speed, 0.5..1.5 (1 = as recorded); the key is kept by the pitch shifter. */
    this.tempo = 1;
    /** Key change in semitones, −6..6. */
    this.pitch = 0;
    /** @type {{ a: number, b: number } | null} the A–B loop */
    this.loop = null;
    /** @type {StretchNode | null} */
    this.shifter = null;
    /** Whether the master bus goes through the shifter right now. */
    this.shifting = false;
    /** @type {Promise<void> | null} the shifter being made */
    this.shifterLoad = null;
        /** @type {string} why the shifter could not be used ('' when it can) */
    this.shiftError = '';
  }

  /** One AudioContext for the page's lifetime. */
  context() {
    if (!this.ctx) {
      this.ctx = new AudioContext({ latencyHint: 'playback' });
      this.master = this.ctx.createGain();
      this.master.gain.value = this.masterVolume;
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
    const t = this.offset + Math.max(0, this.ctx.currentTime - this.startedAt) * this.tempo;
    const loop = this.loop;
    if (loop && this.offset < loop.b && t >= loop.b) return loop.a + ((t - loop.a) % (loop.b - loop.a));
    return Math.min(this.duration, t);
  }

  async play() {
    if (this.playing || this.stems.size === 0) return;
    const ctx = this.context();
    // Browsers create contexts suspended until a user gesture; Play is that gesture.
    if (ctx.state !== 'running') await ctx.resume();
    if (this.playing) return;
    if (this.offset >= this.duration - 0.01) this.offset = this.loop ? this.loop.a : 0;
    if (this.loop && (this.offset < this.loop.a || this.offset >= this.loop.b)) this.offset = this.loop.a;
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
    let t = Math.min(Math.max(0, seconds), this.duration);
    // Past B with the loop on: back to A (a source started beyond its loop's end would not loop).
    if (this.loop && t >= this.loop.b) t = this.loop.a;
    if (this.playing) this.restart(t);
    else this.offset = t;
    this.onchange();
  }

  /** Stops playback at the end of the song; call from the UI loop. */
  tick() {
    if (this.playing && !this.loop && this.currentTime >= this.duration - 0.005) {
      this.pause();
      this.offset = this.duration;
      this.onchange();
    }
  }

  /** @param {number} volume 0..1 */
  setMasterVolume(volume) {
    this.masterVolume = Math.min(1, Math.max(0, volume));
    const ctx = this.ctx;
    if (ctx && this.master) {
      this.master.gain.cancelScheduledValues(ctx.currentTime);
      this.master.gain.setTargetAtTime(this.masterVolume, ctx.currentTime, GAIN_RAMP_S);
    }
    this.onchange();
  }

  /**
   * Changes the speed at once on every source (one audio-clock time for all, so they stay
   * sample-locked); the position is re-based so it keeps counting in song seconds.
   * @param {number} tempo
   */
  async setTempo(tempo) {
    const next = Math.min(TEMPO_RANGE.max, Math.max(TEMPO_RANGE.min, tempo));
    if (this.playing && this.ctx) {
      const ctx = this.ctx;
      const now = Math.max(ctx.currentTime, this.startedAt);
      const t = this.currentTime;
      for (const stem of this.stems.values()) stem.source?.playbackRate.setValueAtTime(next, now);
      this.offset = t;
      this.startedAt = now;
    }
    this.tempo = next;
    await this.applyShift();
    this.onchange();
  }

  /** @param {number} semitones */
  async setPitch(semitones) {
    this.pitch = Math.min(PITCH_RANGE.max, Math.max(PITCH_RANGE.min, Math.round(semitones)));
    await this.applyShift();
    this.onchange();
  }

  /**
   * Routes the master bus through the pitch shifter while tempo or key differ from the recording
   * (the shifter keeps the key the tempo would move), straight to the speakers otherwise.
   */
  async applyShift() {
    const semitonesNow = shiftFor(this.tempo, this.pitch);
    if (Math.abs(semitonesNow) <= 1e-3 && !this.shifting) return;
    const ctx = this.context();
    const master = /** @type {GainNode} */ (this.master);
    const semitones = shiftFor(this.tempo, this.pitch);
    const needed = Math.abs(semitones) > 1e-3;
    if (needed && !this.shifter) {
      // One shifter however many changes arrive while it loads.
      this.shifterLoad ??= (async () => {
        try {
          const make = await loadStretch();
          const node = await make(ctx, { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2] });
          node.connect(ctx.destination);
          await node.start();
          this.shifter = node;
          this.shiftError = '';
        } catch (err) {
          this.shiftError = err instanceof Error ? err.message : String(err);
          this.shifterLoad = null;
        }
      })();
      await this.shifterLoad;
      if (!this.shifter) {
        this.onchange();
        return;
      }
    }
    const shifter = this.shifter;
    if (shifter) void shifter.schedule({ semitones: needed ? shiftFor(this.tempo, this.pitch) : 0 });
    if (needed === this.shifting) return;
    master.disconnect();
    master.connect(needed && shifter ? shifter : ctx.destination);
    this.shifting = needed && !!shifter;
  }

  /**
   * Sets (or with null clears) the A–B loop; the sources loop in place, so the stems stay in sync.
   * @param {{ a: number, b: number } | null} loop
   */
  setLoop(loop) {
    const t = this.currentTime;
    if (loop) {
      const a = Math.max(0, Math.min(loop.a, loop.b));
      const b = Math.min(this.duration || Math.max(loop.a, loop.b), Math.max(loop.a, loop.b));
      this.loop = b - a >= MIN_LOOP_S ? { a, b } : null;
    } else {
      this.loop = null;
    }
    const now = this.ctx?.currentTime ?? 0;
    if (this.playing) {
      const inside = !this.loop || (t >= this.loop.a && t < this.loop.b);
      if (!inside) {
        this.restart(/** @type {{ a: number }} */ (this.loop).a);
      } else {
        for (const stem of this.stems.values()) {
          const src = stem.source;
          if (!src) continue;
          src.loop = !!this.loop;
          if (this.loop) {
            src.loopStart = this.loop.a;
            src.loopEnd = this.loop.b;
          }
        }
        this.offset = t;
        this.startedAt = Math.max(now, this.startedAt);
      }
    } else if (this.loop && (this.offset < this.loop.a || this.offset >= this.loop.b)) {
      this.offset = this.loop.a;
    }
    this.onchange();
  }

  /**
   * Renders the current mix (gains, mutes, solos, master, tempo, key) offline, as the speakers
   * would hear it: `seconds` of song from `from`, at the current tempo.
   * @param {{ from?: number, seconds?: number }} [opts]
   * @returns {Promise<AudioBuffer>}
   */
  async renderMix(opts = {}) {
    const from = opts.from ?? 0;
    const songSeconds = Math.min(opts.seconds ?? this.duration, this.duration - from);
    const first = [...this.stems.values()][0];
    if (!first || songSeconds <= 0) throw new Error('nothing to render');
    const rate = first.buffer.sampleRate;
    const semitones = shiftFor(this.tempo, this.pitch);
    const shifting = Math.abs(semitones) > 1e-3;
    // Room for the shifter's latency at the end.
    const tail = shifting ? 0.5 : 0;
    const ctx = new OfflineAudioContext(2, Math.ceil((songSeconds / this.tempo + tail) * rate), rate);
    const master = ctx.createGain();
    master.gain.value = this.masterVolume;
    if (shifting) {
      const make = await loadStretch();
      const node = await make(ctx, { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [2] });
      await node.schedule({ output: 0, active: true, semitones });
      master.connect(node);
      node.connect(ctx.destination);
    } else {
      master.connect(ctx.destination);
    }
    for (const stem of this.stems.values()) {
      const gain = ctx.createGain();
      gain.gain.value = this.isAudible(stem) ? stem.volume : 0;
      gain.connect(master);
      const src = ctx.createBufferSource();
      src.buffer = stem.buffer;
      src.playbackRate.value = this.tempo;
      src.connect(gain);
      src.start(0, from, songSeconds);
    }
    return ctx.startRendering();
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
      src.playbackRate.value = this.tempo;
      if (this.loop) {
        src.loop = true;
        src.loopStart = this.loop.a;
        src.loopEnd = this.loop.b;
      }
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
