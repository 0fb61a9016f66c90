// @ts-check
// Progress a listener can trust. The bar is the share of the song the worker has reported final
// (`readySec` of the song's length; the worker's `progress` for a server without it), and moves
// between reports only at the rate the reports themselves have shown, never past one report's
// step beyond the last — so it is never ahead of what the worker is about to report. Before the
// first report there is no percentage at all. Neither the bar nor the time left ever goes back:
// a slower stretch holds them still until the estimate catches up.
// Time left for a queued song comes from the durations this browser has measured (localStorage).

/** @typedef {import('./api.js').JobView} JobView */

const STORAGE = 'msaas.speed.v1';
/** Before anything is measured: seconds of separation per second of audio, and per song. */
const DEFAULT_SEC_PER_AUDIO_SEC = 1.5;
const DEFAULT_SONG_SEC = 240;
/** The progressive pieces' sample rate (the contract's: 44.1 kHz). */
const LIVE_RATE = 44100;
/** Between reports the bar moves at most this share of the expected next step. */
const STEP_SHARE = 0.95;
/** A step when only one report is in and no piece says how big they are. */
const FIRST_STEP = 0.1;
/** Reports used for the rate: the last few, so a change of pace shows within a few chunks. */
const RATE_WINDOW = 6;
/** The bar stops short of the end until the job says done. */
const MAX_BEFORE_DONE = 0.99;

/** @typedef {{ secPerAudioSec: number, songSec: number, samples: number }} Speed */

/** @returns {Speed} */
export function loadSpeed() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORAGE) ?? 'null');
    if (raw && Number.isFinite(raw.secPerAudioSec) && Number.isFinite(raw.songSec)) return raw;
  } catch {
    /* nothing stored, or unreadable */
  }
  return { secPerAudioSec: DEFAULT_SEC_PER_AUDIO_SEC, songSec: DEFAULT_SONG_SEC, samples: 0 };
}

/** The song's length in seconds: from the worker's frame count once known, else from the upload's scan. @param {JobView} job */
export function songSeconds(job) {
  if (job.totalFrames && job.totalFrames > 0) return job.totalFrames / LIVE_RATE;
  return job.audioSec && job.audioSec > 0 ? job.audioSec : null;
}

/**
 * How long the last run took, s (finishedAt − startedAt). Not `durationSec`: the job view now
 * gives the song's length there once the worker knows it.
 * @param {JobView} job
 */
function runSeconds(job) {
  const ms = Date.parse(job.finishedAt ?? '') - Date.parse(job.startedAt ?? '');
  return Number.isFinite(ms) && ms > 0 ? ms / 1000 : null;
}

/** Learns from a finished job (a running average over the last few). @param {JobView} job */
export function recordFinished(job) {
  const took = runSeconds(job);
  const audio = songSeconds(job);
  if (job.state !== 'done' || took === null) return;
  const speed = loadSpeed();
  const w = speed.samples === 0 ? 1 : Math.max(0.2, 1 / (speed.samples + 1));
  const perAudio = audio ? took / audio : speed.secPerAudioSec;
  const next = {
    secPerAudioSec: speed.secPerAudioSec * (1 - w) + perAudio * w,
    songSec: speed.songSec * (1 - w) + took * w,
    samples: speed.samples + 1,
  };
  try {
    localStorage.setItem(STORAGE, JSON.stringify(next));
  } catch {
    /* storage disabled */
  }
}

/**
 * What a job's record says is done, 0..1, and in which terms: seconds ready of the song's
 * length when the worker reports them, else its progress fraction.
 * @param {JobView} job
 * @returns {{ basis: 'ready' | 'progress', value: number }}
 */
function reported(job) {
  const song = songSeconds(job);
  if (job.readySec > 0 && song) return { basis: 'ready', value: Math.min(1, job.readySec / song) };
  return { basis: 'progress', value: Math.max(0, Math.min(1, job.progress)) };
}

/**
 * The share of the song one chunk adds (the last piece's length), when the pieces say.
 * @param {JobView} job
 */
function pieceShare(job) {
  const ends = job.pieceEnds ?? [];
  const total = job.totalFrames;
  if (ends.length === 0 || !total) return null;
  const last = ends[ends.length - 1] - (ends.length > 1 ? ends[ends.length - 2] : 0);
  return last > 0 ? last / total : null;
}

/** Follows one job's reports; the bar and the time left from them. */
export class ProgressClock {
  constructor() {
    /** @type {JobView | null} */
    this.job = null;
    /** Local clock minus the server's, ms (from the job's updatedAt as it arrives). */
    this.skewMs = 0;
    /** @type {'ready' | 'progress'} the terms of the reports below */
    this.basis = /** @type {'ready' | 'progress'} */ ('progress');
    /** @type {{ at: number, value: number }[]} the reports (local ms, share done), oldest first */
    this.reports = [];
    /** The highest share shown: the bar never goes below it. */
    this.shown = 0;
    /** The time left last shown (ms) and for which state, so it never grows. */
    this.remainingShown = Infinity;
    this.remainingState = '';
  }

  /** @param {JobView} job @param {number} [now] */
  update(job, now = Date.now()) {
    const old = this.job;
    if (!old || old.hash !== job.hash) {
      this.reports = [];
      this.shown = 0;
      this.remainingShown = Infinity;
      this.remainingState = '';
    }
    const updated = Date.parse(job.updatedAt);
    if (Number.isFinite(updated)) this.skewMs = Math.max(0, now - updated);
    this.job = job;
    if (job.state !== 'processing') return;
    const r = reported(job);
    if (r.basis !== this.basis) {
      // Reports in new terms (the first piece after progress-only reports): rates start over.
      this.basis = r.basis;
      this.reports = [];
    }
    const last = this.reports[this.reports.length - 1];
    if (r.value > 0 && (!last || r.value > last.value)) {
      this.reports.push({ at: now, value: r.value });
      if (this.reports.length > RATE_WINDOW) this.reports.shift();
    }
  }

  /** Whether the worker has reported anything on this run yet. */
  hasReport() {
    return this.reports.length > 0;
  }

  /** The job's start on the local clock. */
  startedMs() {
    const s = this.job?.startedAt ? Date.parse(this.job.startedAt) : NaN;
    return Number.isFinite(s) ? s + this.skewMs : null;
  }

  /**
   * Share of the song per ms, from the reports: between the first and last of the recent ones,
   * or with only one, since the job started (which counts its start-up, so it errs slow).
   */
  rate() {
    const n = this.reports.length;
    if (n === 0) return 0;
    const last = this.reports[n - 1];
    if (n >= 2) {
      const first = this.reports[0];
      return last.at > first.at ? (last.value - first.value) / (last.at - first.at) : 0;
    }
    const started = this.startedMs();
    return started !== null && last.at > started ? last.value / (last.at - started) : 0;
  }

  /** The step the next report is expected to add. */
  step() {
    const n = this.reports.length;
    const job = this.job;
    const piece = job && this.basis === 'ready' ? pieceShare(job) : null;
    if (piece) return piece;
    if (n >= 2) return this.reports[n - 1].value - this.reports[n - 2].value;
    return n === 1 ? Math.min(FIRST_STEP, this.reports[0].value) : 0;
  }

  /**
   * Progress now, 0..1, or null before the worker's first report (nothing to show but that it
   * started). Never lower than anything shown before.
   * @param {number} [now]
   */
  progress(now = Date.now()) {
    const job = this.job;
    if (!job) return null;
    if (job.state === 'done') return 1;
    if (job.state !== 'processing' || this.reports.length === 0) return this.shown > 0 ? this.shown : null;
    const last = this.reports[this.reports.length - 1];
    const ahead = Math.min(STEP_SHARE * this.step(), this.rate() * Math.max(0, now - last.at));
    this.shown = Math.max(this.shown, Math.min(MAX_BEFORE_DONE, last.value + ahead));
    return this.shown;
  }

  /** @param {number} [now] */
  elapsedMs(now = Date.now()) {
    const started = this.startedMs();
    return started === null ? 0 : Math.max(0, now - started);
  }

  /**
   * Milliseconds until the stems should be ready, or null when nothing supports a figure yet
   * (processing without a report). Running: the share left at the reports' rate; queued: the
   * songs ahead and this one at this browser's measured speed. Never more than shown before in
   * the same state.
   * @param {number} [now]
   */
  remainingMs(now = Date.now()) {
    const job = this.job;
    if (!job || job.state === 'done' || job.state === 'failed') return 0;
    /** @type {number | null} */
    let estimate = null;
    if (job.state === 'processing') {
      const p = this.progress(now);
      const rate = this.rate();
      if (p !== null && rate > 0) estimate = (1 - p) / rate;
    } else {
      const speed = loadSpeed();
      const audio = songSeconds(job);
      const own = (audio ? audio * speed.secPerAudioSec : speed.songSec) * 1000;
      estimate = (job.position ?? 0) * speed.songSec * 1000 + own;
    }
    if (this.remainingState !== job.state) {
      this.remainingState = job.state;
      this.remainingShown = Infinity;
    }
    if (estimate === null) return this.remainingShown === Infinity ? null : this.remainingShown;
    this.remainingShown = Math.min(this.remainingShown, estimate);
    return this.remainingShown;
  }
}

/** `1:05`, `12:40`, `1:02:03` @param {number} ms */
export function clock(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** “about 20 s”, “about 3 min” @param {number} ms */
export function roughly(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 60) return `about ${s < 10 ? s : Math.round(s / 5) * 5} s`;
  const m = Math.round(s / 60);
  return m < 90 ? `about ${m} min` : `about ${Math.round(m / 60)} h`;
}
