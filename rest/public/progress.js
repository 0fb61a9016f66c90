// @ts-check
// Time estimates for a job: progress between the worker's reports (it reports once per model
// segment, which can be many seconds apart), elapsed time, and time left — from the queue
// position and the durations this browser has measured (kept in localStorage).

/** @typedef {import('./api.js').JobView} JobView */

const STORAGE = 'msaas.speed.v1';
/** Before anything is measured: seconds of separation per second of audio, and per song. */
const DEFAULT_SEC_PER_AUDIO_SEC = 1.5;
const DEFAULT_SONG_SEC = 240;

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

/** Learns from a finished job (a running average over the last few). @param {JobView} job */
export function recordFinished(job) {
  if (job.state !== 'done' || !job.durationSec || job.durationSec <= 0) return;
  const speed = loadSpeed();
  const w = speed.samples === 0 ? 1 : Math.max(0.2, 1 / (speed.samples + 1));
  const perAudio = job.audioSec && job.audioSec > 0 ? job.durationSec / job.audioSec : speed.secPerAudioSec;
  const next = {
    secPerAudioSec: speed.secPerAudioSec * (1 - w) + perAudio * w,
    songSec: speed.songSec * (1 - w) + job.durationSec * w,
    samples: speed.samples + 1,
  };
  try {
    localStorage.setItem(STORAGE, JSON.stringify(next));
  } catch {
    /* storage disabled */
  }
}

/**
 * Follows one job's reports and estimates between them.
 */
export class ProgressClock {
  constructor() {
    /** @type {JobView | null} */
    this.job = null;
    /** Local ms at which the current progress value arrived. */
    this.reportedAt = 0;
    /** The progress reported before the current one, for the size of a step. */
    this.previous = 0;
    /** Local clock minus the server's, ms (from the job's updatedAt as it arrives). */
    this.skewMs = 0;
    /** Measured run time per unit of progress, ms (once two reports are in). */
    this.msPerUnit = 0;
  }

  /** @param {JobView} job @param {number} [now] */
  update(job, now = Date.now()) {
    const old = this.job;
    const updated = Date.parse(job.updatedAt);
    if (Number.isFinite(updated)) this.skewMs = Math.max(0, now - updated);
    if (!old || old.hash !== job.hash || job.progress !== old.progress || job.state !== old.state) {
      if (old && old.hash === job.hash && job.progress > old.progress) this.previous = old.progress;
      this.reportedAt = now;
      const started = this.startedMs();
      if (job.state === 'processing' && job.progress > 0 && started !== null) this.msPerUnit = (now - started) / job.progress;
    }
    this.job = job;
  }

  /** The job's start on the local clock. */
  startedMs() {
    const s = this.job?.startedAt ? Date.parse(this.job.startedAt) : NaN;
    return Number.isFinite(s) ? s + this.skewMs : null;
  }

  /** Milliseconds the whole separation should take. */
  expectedMs() {
    const job = this.job;
    if (!job) return DEFAULT_SONG_SEC * 1000;
    if (this.msPerUnit > 0) return this.msPerUnit;
    const speed = loadSpeed();
    return (job.audioSec && job.audioSec > 0 ? job.audioSec * speed.secPerAudioSec : speed.songSec) * 1000;
  }

  /**
   * Progress now, 0..1: the last report plus the time since it at the measured (or estimated)
   * speed, never past the next report's likely value nor 99 %.
   * @param {number} [now]
   */
  progress(now = Date.now()) {
    const job = this.job;
    if (!job) return 0;
    if (job.state === 'done') return 1;
    if (job.state !== 'processing') return job.progress;
    const started = this.startedMs() ?? this.reportedAt;
    const total = this.expectedMs();
    const fromStart = (now - started) / total;
    const step = job.progress - this.previous > 0 ? job.progress - this.previous : 1;
    const cap = Math.min(0.99, job.progress + step);
    return Math.max(job.progress, Math.min(cap, fromStart));
  }

  /** @param {number} [now] */
  elapsedMs(now = Date.now()) {
    const started = this.startedMs();
    return started === null ? 0 : Math.max(0, now - started);
  }

  /**
   * Milliseconds until the stems should be ready: the rest of this run, or for a queued song
   * the songs ahead (at the measured song time) plus its own run.
   * @param {number} [now]
   */
  remainingMs(now = Date.now()) {
    const job = this.job;
    if (!job || job.state === 'done' || job.state === 'failed') return 0;
    const total = this.expectedMs();
    if (job.state === 'processing') return Math.max(0, total * (1 - this.progress(now)));
    const ahead = job.position ?? 0;
    return ahead * loadSpeed().songSec * 1000 + total;
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
