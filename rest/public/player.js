// @ts-check
// Plays the stems of one song in sample-accurate sync with the Web Audio API: every stem is
// an AudioBuffer, all sources start at the same context time and offset, and position is
// computed from the AudioContext clock rather than from timers.
// While the song is still being separated the buffers are the song's full length and fill from
// the start (`startLive`, `write`, `setReady`): playback runs on the part that is ready, waits at
// its edge, and carries on as it grows by swapping to fresh sources at one audio-clock time (a
// short crossfade of the same samples); `finish` swaps to the finished stems the same way.

/** @typedef {import('./api.js').Stem} Track a stem's name (the model's four and instrumental) */
/**
 * @typedef {object} Stem
 * @property {Track} name
 * @property {AudioBuffer} buffer
 * @property {GainNode} gain volume × mute/solo
 * @property {AnalyserNode} analyser for the level meter
 * @property {AudioBufferSourceNode | null} source the source playing now
 * @property {GainNode | null} fade the source's own gain (for crossfades at a swap)
 * @property {{ src: AudioBufferSourceNode, fade: GainNode }[]} retiring sources fading out after a swap
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
/** Crossfade when swapping sources on the same samples (more audio became ready; the finished stems). */
const SWAP_FADE_S = 0.01;
/** Playback waiting at the ready edge resumes once this much more is ready (or the song is complete). */
const RESUME_AHEAD_S = 0.05;
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
    /** Whether every stem is whole (false while the song is being separated). */
    this.complete = true;
    /** While not complete: seconds from the start that every stem holds. */
    this.readySec = 0;
    /** Play was asked for but the position is past the ready part: waiting there for more. */
    this.stalled = false;
  }

  /** Seconds from the start that can be played: the whole song once complete. */
  get ready() {
    return this.complete ? this.duration : Math.min(this.duration, this.readySec);
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
    const stem = { name, buffer, gain, analyser, source: null, fade: null, retiring: [], volume: 1, muted: false, soloed: false, target: 1 };
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
    this.stalled = false;
    this.offset = 0;
    this.duration = 0;
    this.complete = true;
    this.readySec = 0;
    this.onchange();
  }

  /**
   * Stems of a song still being separated: silent buffers of the song's length that `write`
   * fills from the start; nothing plays until `setReady` says a part is whole.
   * @param {readonly Track[]} names
   * @param {number} frames the song's length (grown by `write` if more arrives)
   * @param {number} sampleRate
   */
  startLive(names, frames, sampleRate) {
    this.clear();
    const ctx = this.context();
    this.complete = false;
    this.readySec = 0;
    for (const name of names) this.addStem(name, ctx.createBuffer(2, Math.max(1, frames), sampleRate));
  }

  /**
   * Copies final samples of one stem into its buffer at `startFrame` (heard from the next swap on).
   * @param {Track} name @param {number} startFrame @param {readonly Float32Array[]} channels
   */
  write(name, startFrame, channels) {
    const stem = this.stems.get(name);
    if (!stem || this.complete) return;
    const end = startFrame + channels[0].length;
    if (end > stem.buffer.length) {
      // Longer than the length it was made with: a bigger buffer with what is there (playing sources keep the old one).
      const grown = this.context().createBuffer(stem.buffer.numberOfChannels, end, stem.buffer.sampleRate);
      for (let c = 0; c < stem.buffer.numberOfChannels; c++) grown.copyToChannel(stem.buffer.getChannelData(c), c);
      stem.buffer = grown;
      this.duration = Math.max(this.duration, grown.duration);
    }
    for (let c = 0; c < stem.buffer.numberOfChannels; c++) stem.buffer.copyToChannel(/** @type {Float32Array<ArrayBuffer>} */ (channels[Math.min(c, channels.length - 1)]), c, startFrame);
  }

  /**
   * Every stem now holds the song's first `seconds`: playback waiting at the old edge resumes,
   * playback before it carries on into the new part (fresh sources from the next audio-clock step).
   * @param {number} seconds
   */
  setReady(seconds) {
    if (this.complete || seconds <= this.readySec) return;
    this.readySec = seconds;
    this.extend();
    this.onchange();
  }

  /**
   * The finished stems replace the ones made while separating, at the current position (a
   * crossfade of the same samples, so playback goes on without a gap); stems not given keep theirs.
   * @param {Map<Track, AudioBuffer>} buffers
   */
  finish(buffers) {
    for (const [name, buffer] of buffers) {
      const stem = this.stems.get(name);
      if (stem) stem.buffer = buffer;
      else this.addStem(name, buffer);
    }
    this.complete = true;
    this.duration = Math.max(0, ...[...this.stems.values()].map((s) => s.buffer.duration));
    if (this.offset > this.duration) this.offset = this.duration;
    this.extend();
    this.onchange();
  }

  /** Position (s) heard at audio-clock time `at`, while playing. @param {number} at */
  positionAt(at) {
    const t = this.offset + Math.max(0, at - this.startedAt) * this.tempo;
    const loop = this.loop;
    if (loop && this.offset < loop.b && t >= loop.b) return loop.a + ((t - loop.a) % (loop.b - loop.a));
    return Math.min(this.ready, t);
  }

  /** Playback position in seconds, from the audio clock. */
  get currentTime() {
    if (!this.playing || this.stalled || !this.ctx) return this.offset;
    return this.positionAt(this.ctx.currentTime);
  }

  /** Whether the sources loop now: a loop is set and lies in the ready part. */
  loopsNow() {
    return !!this.loop && this.loop.b <= this.ready + 1e-6;
  }

  /** Whether `t` is past what can be played (while separating). @param {number} t */
  pastReady(t) {
    return !this.complete && t >= this.ready - 0.005;
  }

  async play() {
    if (this.playing || this.stems.size === 0) return;
    const ctx = this.context();
    // Browsers create contexts suspended until a user gesture; Play is that gesture.
    if (ctx.state !== 'running') await ctx.resume();
    if (this.playing) return;
    if (this.offset >= this.duration - 0.01) this.offset = this.loop ? this.loop.a : 0;
    if (this.loop && (this.offset < this.loop.a || this.offset >= this.loop.b)) this.offset = this.loop.a;
    this.begin(this.offset);
    this.onchange();
  }

  /** Starts at `offset`, or waits there when it is not ready yet. @param {number} offset */
  begin(offset) {
    if (this.pastReady(offset)) {
      this.generation++;
      for (const stem of this.stems.values()) this.stopSource(stem);
      this.offset = offset;
      this.playing = true;
      this.stalled = true;
      return;
    }
    this.stalled = false;
    this.startAll(offset);
  }

  pause() {
    if (!this.playing) return;
    const t = this.currentTime;
    this.generation++;
    for (const stem of this.stems.values()) this.stopSource(stem);
    this.playing = false;
    this.stalled = false;
    this.offset = t;
    this.onchange();
  }

  /** @param {number} seconds */
  seek(seconds) {
    let t = Math.min(Math.max(0, seconds), this.duration);
    // Past B with the loop on: back to A (a source started beyond its loop's end would not loop).
    if (this.loop && t >= this.loop.b) t = this.loop.a;
    if (this.playing) {
      this.generation++;
      for (const stem of this.stems.values()) this.stopSource(stem);
      this.begin(t);
    } else {
      this.offset = t;
    }
    this.onchange();
  }

  /** Stops playback at the end of the song, or waits at the ready part's edge; call from the UI loop. */
  tick() {
    if (!this.playing || this.stalled) return;
    const t = this.currentTime;
    if (!this.loop && this.complete && t >= this.duration - 0.005) {
      this.pause();
      this.offset = this.duration;
      this.onchange();
    } else if (!this.loopsNow() && this.pastReady(t)) {
      // Ahead of the separation: hold at the edge until more is ready (or the song ends there).
      if (this.ready >= this.duration - 0.005 && !this.loop) {
        this.pause();
        this.offset = this.duration;
      } else {
        this.begin(this.ready);
      }
      this.onchange();
    }
  }

  /**
   * More became playable (or the stems were replaced): resumes a wait at the edge, or swaps the
   * playing sources for fresh ones at one audio-clock time a moment ahead, crossfading over the
   * same samples, so what was already heard is untouched and playback runs on past the old edge.
   */
  extend() {
    if (!this.playing || !this.ctx) return;
    if (this.stalled) {
      if (this.complete || this.ready > this.offset + RESUME_AHEAD_S) this.begin(this.offset);
      return;
    }
    const at = this.ctx.currentTime + START_LEAD_S;
    const pos = this.positionAt(at);
    if (this.pastReady(pos)) return; // tick() holds at the edge
    for (const stem of this.stems.values()) {
      if (stem.source && stem.fade) {
        stem.fade.gain.setValueAtTime(1, at);
        stem.fade.gain.linearRampToValueAtTime(0, at + SWAP_FADE_S);
        try {
          stem.source.stop(at + SWAP_FADE_S);
        } catch {
          /* never started */
        }
        stem.retiring.push({ src: stem.source, fade: stem.fade });
        const done = { src: stem.source, fade: stem.fade };
        stem.source.addEventListener('ended', () => {
          stem.retiring = stem.retiring.filter((r) => r.src !== done.src);
          done.fade.disconnect();
        });
      }
      stem.source = null;
      stem.fade = null;
    }
    this.startAll(pos, at, SWAP_FADE_S);
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
      for (const stem of this.stems.values()) {
        stem.source?.playbackRate.setValueAtTime(next, now);
        for (const r of stem.retiring) r.src.playbackRate.setValueAtTime(next, now);
      }
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
      } else if (!this.complete) {
        // Sources of a growing song may be bounded at the ready edge: fresh ones with the loop.
        if (!this.stalled) {
          this.offset = t;
          this.startedAt = Math.max(now, this.startedAt);
          this.extend();
        }
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
    const songSeconds = Math.min(opts.seconds ?? this.ready, this.ready - from);
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

  /**
   * Starts every stem's source at `offset`, at audio-clock time `when`.
   * @param {number} offset
   * @param {number} [when] default: a moment from now
   * @param {number} [fadeIn] seconds to fade the new sources in (a swap), else none
   */
  startAll(offset, when, fadeIn = 0) {
    const ctx = /** @type {AudioContext} */ (this.ctx);
    const at = when ?? ctx.currentTime + START_LEAD_S;
    const generation = ++this.generation;
    const loops = this.loopsNow();
    // A growing song's sources stop at the ready edge rather than play what is not final yet.
    const bound = this.complete || loops ? undefined : this.ready - offset;
    for (const stem of this.stems.values()) {
      const src = ctx.createBufferSource();
      src.buffer = stem.buffer;
      src.playbackRate.value = this.tempo;
      if (loops && this.loop) {
        src.loop = true;
        src.loopStart = this.loop.a;
        src.loopEnd = this.loop.b;
      }
      const fade = ctx.createGain();
      if (fadeIn > 0) {
        fade.gain.setValueAtTime(0, at);
        fade.gain.linearRampToValueAtTime(1, at + fadeIn);
      }
      src.connect(fade);
      fade.connect(stem.gain);
      if (offset < stem.buffer.duration && (bound === undefined || bound > 0)) {
        if (bound === undefined) src.start(at, offset);
        else src.start(at, offset, bound);
      }
      src.addEventListener('ended', () => {
        if (generation === this.generation) this.tick();
      });
      stem.source = src;
      stem.fade = fade;
    }
    this.offset = offset;
    this.startedAt = at;
    this.playing = true;
  }

  /** @param {number} offset */
  restart(offset) {
    this.generation++;
    for (const stem of this.stems.values()) this.stopSource(stem);
    this.begin(offset);
  }

  /** @param {Stem} stem */
  stopSource(stem) {
    const src = stem.source;
    const playing = src && stem.fade ? [{ src, fade: stem.fade }] : [];
    stem.source = null;
    stem.fade = null;
    for (const r of [...playing, ...stem.retiring]) {
      try {
        r.src.stop();
      } catch {
        /* never started (offset beyond this stem's end) */
      }
      r.src.disconnect();
      r.fade.disconnect();
    }
    stem.retiring = [];
  }
}
