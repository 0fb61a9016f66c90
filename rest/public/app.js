// @ts-check
// The page: upload → live job progress → four-stem player, plus the recent-songs list.
import {
  ApiError, deleteSong, deleteStem, fetchBinary, formatBytes, getApiKey, getInfo, getJob,
  setApiKey, uploadSong, zipUrl, authHeaders,
} from './api.js';
import { isTerminal, watchJob } from './jobwatch.js';
import { StemPlayer } from './player.js';
import { forgetSong, findRecent, loadRecent, rememberSong, timeAgo, updateState } from './recent.js';
import { Waveform, computePeaks } from './waveform.js';

/** @typedef {import('./api.js').Job} Job */
/** @typedef {import('./api.js').Info} Info */
/** @typedef {import('./api.js').Track} Track */

/** @type {Track[]} */
const DEFAULT_TRACKS = ['drums', 'bass', 'other', 'vocals'];
/** @type {Record<Track, string>} */
const STEM_COLORS = { drums: '#fbbf24', bass: '#a78bfa', other: '#34d399', vocals: '#f472b6' };
/** @type {Record<string, string>} */
const STATE_LABELS = {
  queued: 'Queued', processing: 'Separating', done: 'Done', failed: 'Failed', gone: 'Deleted', unknown: 'Unknown',
};
const HASH_RE = /^[0-9a-f]{56}$/;

/**
 * @template {HTMLElement} T
 * @param {string} selector
 * @param {ParentNode} [root]
 * @returns {T}
 */
function $(selector, root = document) {
  const el = root.querySelector(selector);
  if (!el) throw new Error(`missing ${selector}`);
  return /** @type {T} */ (el);
}

const el = {
  main: $('#main'),
  upload: /** @type {HTMLElement} */ ($('#upload')),
  dropzone: /** @type {HTMLLabelElement} */ ($('#dropzone')),
  file: /** @type {HTMLInputElement} */ ($('#file')),
  limitHint: $('#limit-hint'),
  uploadStatus: $('#upload-status'),
  uploadName: $('#upload-name'),
  uploadPct: $('#upload-pct'),
  uploadProgress: /** @type {HTMLProgressElement} */ ($('#upload-progress')),
  uploadCancel: /** @type {HTMLButtonElement} */ ($('#upload-cancel')),
  uploadError: $('#upload-error'),
  song: $('#song'),
  songTitle: $('#song-title'),
  songHash: $('#song-hash'),
  songNote: $('#song-note'),
  badge: $('#job-badge'),
  job: $('#job'),
  jobProgress: /** @type {HTMLProgressElement} */ ($('#job-progress')),
  jobText: $('#job-text'),
  player: $('#player'),
  playerMsg: $('#player-msg'),
  play: /** @type {HTMLButtonElement} */ ($('#play')),
  timeNow: $('#time-now'),
  timeTotal: $('#time-total'),
  seek: /** @type {HTMLInputElement} */ ($('#seek')),
  downloadAll: /** @type {HTMLAnchorElement} */ ($('#download-all')),
  stems: $('#stems'),
  deleteSong: /** @type {HTMLButtonElement} */ ($('#delete-song')),
  recentList: $('#recent-list'),
  recentEmpty: $('#recent-empty'),
  recentRefresh: /** @type {HTMLButtonElement} */ ($('#recent-refresh')),
  announcer: $('#announcer'),
  apiKey: /** @type {HTMLInputElement} */ ($('#api-key')),
  serverInfo: $('#server-info'),
  stemTemplate: /** @type {HTMLTemplateElement} */ ($('#stem-row')),
  recentTemplate: /** @type {HTMLTemplateElement} */ ($('#recent-row')),
};

const player = new StemPlayer();

/**
 * @type {{
 *   info: Info | null,
 *   hash: string | null,
 *   name: string,
 *   job: Job | null,
 *   watcher: { stop: () => void } | null,
 *   upload: { abort: () => void } | null,
 *   loadedFor: string | null,
 *   loadToken: number,
 *   waves: Map<Track, Waveform>,
 *   rows: Map<Track, HTMLLIElement>,
 *   lastAnnounced: string,
 *   dragging: boolean,
 * }}
 */
const state = {
  info: null,
  hash: null,
  name: '',
  job: null,
  watcher: null,
  upload: null,
  loadedFor: null,
  loadToken: 0,
  waves: new Map(),
  rows: new Map(),
  lastAnnounced: '',
  dragging: false,
};

// ---------------------------------------------------------------- helpers

/** @param {number} s */
function formatTime(s) {
  if (!Number.isFinite(s) || s < 0) s = 0;
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}:${rest.toFixed(1).padStart(4, '0')}`;
}

/** @param {number} s */
function spokenTime(s) {
  const m = Math.floor(s / 60);
  const sec = Math.floor(s - m * 60);
  return m ? `${m} min ${sec} s` : `${sec} s`;
}

/** Screen-reader announcement (polite; repeated messages are re-announced). @param {string} msg */
function announce(msg) {
  el.announcer.textContent = '';
  window.setTimeout(() => { el.announcer.textContent = msg; }, 30);
}

/** @param {string} hash */
const shortHash = (hash) => `${hash.slice(0, 10)}…`;

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/**
 * Two-step confirmation for destructive buttons: the first press arms it, the second acts.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} action
 */
function confirmTwice(button, action) {
  /** @type {number} */
  let timer = 0;
  const originalLabel = button.getAttribute('aria-label');
  const originalText = button.classList.contains('icon-btn') ? null : button.textContent;
  const disarm = () => {
    button.dataset.armed = 'false';
    if (originalLabel !== null) button.setAttribute('aria-label', originalLabel);
    if (originalText !== null) button.textContent = originalText;
  };
  button.addEventListener('click', async () => {
    if (button.dataset.armed !== 'true') {
      button.dataset.armed = 'true';
      const prompt = button.dataset.confirm ?? 'Click again to delete';
      if (originalText !== null) button.textContent = 'Click again to delete';
      button.setAttribute('aria-label', prompt);
      button.title = prompt;
      announce(prompt);
      clearTimeout(timer);
      timer = window.setTimeout(disarm, 4000);
      return;
    }
    clearTimeout(timer);
    disarm();
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- upload

/** @param {string} s */
function setUploadState(s) {
  el.upload.dataset.state = s;
}

/** @param {string} msg */
function showUploadError(msg) {
  el.uploadError.textContent = msg;
  el.uploadError.hidden = false;
  setUploadState('error');
}

function clearUploadError() {
  el.uploadError.hidden = true;
  el.uploadError.textContent = '';
}

/** @param {File} file */
async function startUpload(file) {
  state.upload?.abort();
  clearUploadError();
  const maxMb = state.info?.maxUploadMb;
  if (maxMb && file.size > maxMb * 1024 * 1024) {
    showUploadError(`“${file.name}” is ${formatBytes(file.size)}; this server accepts MP3s up to ${maxMb} MB. Try a shorter song or a lower bitrate.`);
    return;
  }
  if (file.size === 0) {
    showUploadError(`“${file.name}” is empty. Choose an MP3 file.`);
    return;
  }
  setUploadState('uploading');
  el.uploadStatus.hidden = false;
  el.uploadName.textContent = `${file.name} · ${formatBytes(file.size)}`;
  el.uploadProgress.value = 0;
  el.uploadPct.textContent = '0%';
  announce(`Uploading ${file.name}`);
  const upload = uploadSong(file, {
    maxUploadMb: maxMb,
    onProgress: (f) => {
      el.uploadProgress.value = f;
      el.uploadPct.textContent = f >= 1 ? 'Checking…' : `${Math.round(f * 100)}%`;
    },
  });
  state.upload = upload;
  try {
    const res = await upload.done;
    setUploadState('done');
    el.uploadStatus.hidden = true;
    const songState = res.job?.state ?? (res.reason.includes('separated') ? 'done' : 'queued');
    rememberSong({ hash: res.hash, name: file.name, state: songState });
    renderRecent();
    openSong(res.hash, { name: file.name, job: res.job ?? undefined, reason: res.reason });
  } catch (err) {
    el.uploadStatus.hidden = true;
    if (err instanceof ApiError && err.code === 'aborted') {
      setUploadState('idle');
      announce('Upload cancelled');
    } else {
      showUploadError(messageOf(err));
    }
  } finally {
    if (state.upload === upload) state.upload = null;
    el.file.value = '';
  }
}

function setupUpload() {
  el.file.addEventListener('change', () => {
    const file = el.file.files?.[0];
    if (file) void startUpload(file);
  });
  el.uploadCancel.addEventListener('click', () => state.upload?.abort());

  // Dropping anywhere on the page works; the drop zone lights up while a file is dragged in.
  let depth = 0;
  /** @param {DragEvent} e */
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    el.dropzone.dataset.drag = 'true';
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) el.dropzone.dataset.drag = 'false';
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    el.dropzone.dataset.drag = 'false';
    const files = e.dataTransfer?.files;
    if (!files || files.length === 0) return;
    if (files.length > 1) announce('Only the first file is uploaded');
    void startUpload(files[0]);
  });
}

// ---------------------------------------------------------------- job

/** @param {Job} job */
function jobSentence(job) {
  switch (job.state) {
    case 'queued':
      if (job.position === null || job.position === undefined) return 'Waiting in the queue…';
      if (job.position === 0) return 'Next in line — separation starts as soon as a worker is free.';
      return `Waiting in the queue — ${job.position} ${job.position === 1 ? 'song' : 'songs'} ahead.`;
    case 'processing':
      return `Separating… ${Math.round(job.progress * 100)}%${job.attempts > 1 ? ` (attempt ${job.attempts})` : ''}`;
    case 'done':
      return 'Done — the four stems are ready.';
    case 'failed':
      return `Separation failed: ${job.error || 'the worker gave no reason'}.`;
    default:
      return `State: ${job.state}`;
  }
}

/** @param {Job} job */
function renderJob(job) {
  state.job = job;
  el.song.dataset.state = job.state;
  el.job.dataset.state = job.state;
  el.badge.dataset.state = job.state;
  el.badge.textContent = STATE_LABELS[job.state] ?? job.state;
  el.jobText.textContent = jobSentence(job);
  if (job.state === 'queued') el.jobProgress.removeAttribute('value'); // indeterminate
  else el.jobProgress.value = job.state === 'done' ? 1 : Math.max(0, Math.min(1, job.progress));
  el.job.hidden = job.state === 'done';

  // Announce state changes and every quarter of progress, not every chunk.
  const bucket = job.state === 'processing' ? `processing-${Math.floor(job.progress * 4)}` : `${job.state}-${job.position}`;
  if (bucket !== state.lastAnnounced) {
    state.lastAnnounced = bucket;
    announce(jobSentence(job));
  }
  if (updateState(job.hash, job.state)) renderRecent();
  if (job.state === 'done') void loadStems(job);
}

/**
 * Shows a song: its job progress now, its player when done.
 * @param {string} hash
 * @param {{ name?: string, job?: Job, reason?: string }} [opts]
 */
function openSong(hash, opts = {}) {
  if (state.hash !== hash) closeSong();
  state.hash = hash;
  state.name = opts.name ?? findRecent(hash)?.name ?? `Song ${shortHash(hash)}`;
  state.lastAnnounced = '';
  el.song.hidden = false;
  el.main.dataset.songOpen = 'true';
  el.songTitle.textContent = state.name;
  el.songHash.textContent = shortHash(hash);
  el.songHash.title = `Song hash (SHA-224 of the file): ${hash}`;
  const note = opts.reason ? reasonSentence(opts.reason) : '';
  el.songNote.textContent = note ? ` · ${note}` : '';
  el.downloadAll.href = zipUrl(hash);
  el.downloadAll.download = `${baseName(state.name)}-stems.zip`;
  if (location.hash !== `#${hash}`) history.replaceState(null, '', `#${hash}`);
  markCurrentInRecent();

  if (opts.job) renderJob(opts.job);
  else if (!state.job) {
    el.song.dataset.state = 'loading';
    el.badge.dataset.state = 'unknown';
    el.badge.textContent = 'Checking…';
    el.jobText.textContent = 'Checking the song’s status…';
    el.job.hidden = false;
  }
  if (!opts.job || !isTerminal(opts.job.state)) {
    state.watcher?.stop();
    state.watcher = watchJob(hash, {
      onJob: (job) => {
        if (state.hash === hash) renderJob(job);
      },
      onTrouble: (err, gone) => {
        if (state.hash !== hash) return;
        if (gone) {
          if (updateState(hash, 'gone')) renderRecent();
          el.song.dataset.state = 'gone';
          el.badge.dataset.state = 'gone';
          el.badge.textContent = 'Deleted';
          el.job.hidden = false;
          el.jobProgress.value = 0;
          el.jobText.textContent = 'The server no longer has this song — it was deleted or expired. Upload it again to separate it.';
        } else {
          el.jobText.textContent = `${messageOf(err)} Retrying…`;
        }
      },
    });
  }
}

/** @param {string} reason */
function reasonSentence(reason) {
  if (/already separated/i.test(reason)) return 'separated before — no new work needed';
  if (/already queued/i.test(reason)) return 'already in the queue';
  return '';
}

/** @param {string} name */
function baseName(name) {
  return name.replace(/\.[^.]+$/, '').replace(/[^\w\- .()]+/g, '_').trim() || 'song';
}

function closeSong() {
  state.watcher?.stop();
  state.watcher = null;
  state.hash = null;
  state.job = null;
  state.loadedFor = null;
  state.loadToken++;
  player.clear();
  for (const w of state.waves.values()) w.destroy();
  state.waves.clear();
  state.rows.clear();
  el.stems.replaceChildren();
  el.player.hidden = true;
  el.player.dataset.state = 'empty';
  el.song.hidden = true;
  el.song.dataset.state = 'empty';
  el.main.dataset.songOpen = 'false';
  markCurrentInRecent();
}

// ---------------------------------------------------------------- player

/** @param {string} s */
function setPlayerState(s) {
  el.player.dataset.state = s;
}

/** @param {Job} job */
async function loadStems(job) {
  if (state.loadedFor === job.hash) return;
  state.loadedFor = job.hash;
  const token = ++state.loadToken;
  const order = state.info?.tracks ?? DEFAULT_TRACKS;
  const tracks = order.filter((t) => job.stems?.[t]);
  el.player.hidden = false;
  el.stems.replaceChildren();
  state.rows.clear();
  player.clear();
  if (tracks.length === 0) {
    setPlayerState('empty');
    el.playerMsg.textContent = 'No stems are left for this song. Delete it, or upload it again to separate it anew.';
    updateTransport();
    return;
  }
  setPlayerState('loading');
  el.playerMsg.textContent = `Loading ${tracks.length} stems…`;
  for (const t of tracks) el.stems.append(makeStemRow(job.hash, t, /** @type {string} */ (job.stems[t])));
  updateTransport();
  let loaded = 0;
  const results = await Promise.allSettled(tracks.map(async (t) => {
    const bytes = await fetchBinary(/** @type {string} */ (job.stems[t]));
    const buffer = await player.decode(bytes);
    if (token !== state.loadToken) return;
    player.addStem(t, buffer);
    const row = state.rows.get(t);
    if (row) {
      row.dataset.loaded = 'true';
      const canvas = /** @type {HTMLCanvasElement} */ ($('canvas', row));
      state.waves.set(t, new Waveform(canvas, computePeaks(buffer), STEM_COLORS[t], buffer.duration));
      enableRow(row, true);
    }
    loaded++;
    el.playerMsg.textContent = `Loading stems… ${loaded} of ${tracks.length}`;
  }));
  if (token !== state.loadToken) return;
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[tracks[i], r.reason]] : []));
  for (const [t] of failed) {
    const row = state.rows.get(/** @type {Track} */ (t));
    if (row) row.dataset.loaded = 'error';
  }
  if (failed.length === tracks.length) {
    setPlayerState('error');
    el.playerMsg.textContent = `Couldn’t load the stems: ${messageOf(failed[0][1])}`;
  } else {
    setPlayerState('ready');
    el.playerMsg.textContent = failed.length
      ? `Couldn’t load ${failed.map(([t]) => t).join(', ')}: ${messageOf(failed[0][1])}`
      : '';
    announce(`Stems ready: ${tracks.filter((t) => player.stems.has(t)).join(', ')}. Press Play to listen.`);
  }
  updateTransport();
  drawFrame();
}

/**
 * @param {HTMLLIElement} row
 * @param {boolean} on
 */
function enableRow(row, on) {
  for (const c of row.querySelectorAll('input, button.toggle')) {
    /** @type {HTMLInputElement | HTMLButtonElement} */ (c).disabled = !on;
  }
}

/**
 * @param {string} hash
 * @param {Track} track
 * @param {string} url
 */
function makeStemRow(hash, track, url) {
  const frag = /** @type {DocumentFragment} */ (el.stemTemplate.content.cloneNode(true));
  const row = /** @type {HTMLLIElement} */ ($('li', frag));
  const label = track[0].toUpperCase() + track.slice(1);
  row.dataset.track = track;
  row.dataset.loaded = 'false';
  row.style.setProperty('--stem', STEM_COLORS[track]);
  $('.name', row).textContent = label;
  const canvas = /** @type {HTMLCanvasElement} */ ($('canvas', row));
  canvas.setAttribute('aria-label', `${label} waveform`);
  const volLabel = $('.vol-label', row);
  volLabel.textContent = `${label} volume`;
  const vol = /** @type {HTMLInputElement} */ ($('.vol-input', row));
  vol.setAttribute('aria-valuetext', '100%');
  const mute = /** @type {HTMLButtonElement} */ ($('.mute', row));
  mute.setAttribute('aria-label', `Mute ${label}`);
  const solo = /** @type {HTMLButtonElement} */ ($('.solo', row));
  solo.setAttribute('aria-label', `Solo ${label}`);
  const dl = /** @type {HTMLAnchorElement} */ ($('.download', row));
  dl.href = url;
  dl.download = `${baseName(state.name)}-${track}.mp3`;
  dl.setAttribute('aria-label', `Download ${label} (MP3)`);
  dl.title = `Download ${label} (MP3)`;
  const del = /** @type {HTMLButtonElement} */ ($('.delete', row));
  del.setAttribute('aria-label', `Delete the ${label} stem`);
  del.title = `Delete the ${label} stem`;
  del.dataset.confirm = `Click again to delete the ${label} stem`;
  enableRow(row, false);

  vol.addEventListener('input', () => {
    player.setVolume(track, Number(vol.value));
    vol.setAttribute('aria-valuetext', `${Math.round(Number(vol.value) * 100)}%`);
  });
  mute.addEventListener('click', () => {
    const on = mute.getAttribute('aria-pressed') !== 'true';
    mute.setAttribute('aria-pressed', String(on));
    player.setMuted(track, on);
  });
  solo.addEventListener('click', () => {
    const on = solo.getAttribute('aria-pressed') !== 'true';
    solo.setAttribute('aria-pressed', String(on));
    player.setSoloed(track, on);
  });
  canvas.addEventListener('pointerdown', (e) => {
    if (!player.duration) return;
    const r = canvas.getBoundingClientRect();
    player.seek(((e.clientX - r.left) / r.width) * player.duration);
  });
  downloadWithKey(dl);
  confirmTwice(del, async () => {
    try {
      await deleteStem(hash, track);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        el.playerMsg.textContent = `Couldn’t delete the ${label} stem: ${messageOf(err)}`;
        return;
      }
    }
    player.removeStem(track);
    state.waves.get(track)?.destroy();
    state.waves.delete(track);
    state.rows.delete(track);
    row.remove();
    announce(`${label} stem deleted`);
    if (state.rows.size === 0) {
      setPlayerState('empty');
      el.playerMsg.textContent = 'No stems are left for this song.';
    }
    updateTransport();
  });
  state.rows.set(track, row);
  return row;
}

/**
 * With an API key set, a plain link can't send the X-API-Key header: fetch the file and
 * hand the browser a blob instead. Without a key, the link downloads directly.
 * @param {HTMLAnchorElement} link
 */
function downloadWithKey(link) {
  link.addEventListener('click', async (e) => {
    if (!getApiKey() || link.dataset.blob === 'true') return;
    e.preventDefault();
    try {
      const res = await fetch(link.href, { headers: authHeaders() });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = link.download;
      a.dataset.blob = 'true';
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      el.playerMsg.textContent = `Download failed: ${messageOf(err)}`;
    }
  });
}

function updateTransport() {
  const ready = player.stems.size > 0;
  el.play.disabled = !ready;
  el.seek.disabled = !ready;
  el.play.setAttribute('aria-label', player.playing ? 'Pause' : 'Play');
  el.play.dataset.playing = String(player.playing);
  el.seek.max = String(player.duration || 1);
  el.timeTotal.textContent = formatTime(player.duration);
  if (ready && el.player.dataset.state !== 'loading') setPlayerState(player.playing ? 'playing' : 'paused');
  for (const [name, row] of state.rows) {
    const stem = player.stems.get(name);
    if (!stem) continue;
    row.dataset.audible = String(player.isAudible(stem));
    row.dataset.gain = stem.target.toFixed(2);
  }
}

let seekDragging = false;
/** @type {Float32Array<ArrayBuffer>} */
const scratch = new Float32Array(2048);
let rafPending = false;

function drawFrame() {
  player.tick();
  const t = player.currentTime;
  el.timeNow.textContent = formatTime(t);
  if (!seekDragging) el.seek.value = String(t);
  el.seek.setAttribute('aria-valuetext', `${spokenTime(t)} of ${spokenTime(player.duration)}`);
  for (const [name, wave] of state.waves) wave.draw(t, player.duration);
  for (const [name, row] of state.rows) {
    const stem = player.stems.get(name);
    if (!stem) continue;
    const level = player.level(stem, scratch) * (stem.target > 0 ? 1 : 0);
    const fill = /** @type {HTMLElement} */ (row.querySelector('.meter-fill'));
    const db = level > 0 ? 20 * Math.log10(level) : -60;
    fill.style.transform = `scaleY(${Math.max(0, Math.min(1, (db + 48) / 48)).toFixed(3)})`;
  }
}

function loop() {
  rafPending = false;
  drawFrame();
  if (player.playing) scheduleFrame();
}

function scheduleFrame() {
  if (rafPending) return;
  rafPending = true;
  requestAnimationFrame(loop);
}

function setupPlayer() {
  player.onchange = () => {
    updateTransport();
    scheduleFrame();
  };
  el.play.addEventListener('click', () => {
    if (player.playing) player.pause();
    else void player.play();
  });
  el.seek.addEventListener('pointerdown', () => { seekDragging = true; });
  el.seek.addEventListener('pointerup', () => { seekDragging = false; });
  el.seek.addEventListener('input', () => player.seek(Number(el.seek.value)));
  el.seek.addEventListener('keydown', (e) => {
    const jumps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -15, PageUp: 15 };
    if (e.key in jumps) {
      e.preventDefault();
      player.seek(player.currentTime + jumps[/** @type {keyof typeof jumps} */ (e.key)]);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      player.seek(e.key === 'Home' ? 0 : player.duration);
    }
  });
  // Space toggles playback unless focus is on something that uses Space itself.
  document.addEventListener('keydown', (e) => {
    if (e.key !== ' ' || e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = /** @type {HTMLElement | null} */ (e.target);
    if (t && t !== document.body && t.closest('button, a, input, textarea, select, summary, [contenteditable]')) return;
    if (el.play.disabled) return;
    e.preventDefault();
    el.play.click();
  });
  window.addEventListener('resize', scheduleFrame);
  downloadWithKey(el.downloadAll);
  confirmTwice(el.deleteSong, async () => {
    const hash = state.hash;
    if (!hash) return;
    try {
      await deleteSong(hash);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        el.jobText.textContent = `Couldn’t delete the song: ${messageOf(err)}`;
        el.job.hidden = false;
        return;
      }
    }
    forgetSong(hash);
    closeSong();
    history.replaceState(null, '', location.pathname + location.search);
    renderRecent();
    announce('Song deleted');
    el.file.focus();
  });
}

// ---------------------------------------------------------------- recent songs

function markCurrentInRecent() {
  for (const li of el.recentList.querySelectorAll('li')) {
    const item = /** @type {HTMLLIElement} */ (li);
    const open = /** @type {HTMLButtonElement} */ ($('.recent-open', item));
    if (item.dataset.hash === state.hash) open.setAttribute('aria-current', 'true');
    else open.removeAttribute('aria-current');
  }
}

function renderRecent() {
  const list = loadRecent();
  el.recentEmpty.hidden = list.length > 0;
  el.recentRefresh.hidden = list.length === 0;
  const items = list.map((song) => {
    const frag = /** @type {DocumentFragment} */ (el.recentTemplate.content.cloneNode(true));
    const li = /** @type {HTMLLIElement} */ ($('li', frag));
    li.dataset.hash = song.hash;
    li.dataset.state = song.state;
    $('.recent-name', li).textContent = song.name;
    $('.recent-sub', li).textContent = `${timeAgo(song.addedAt)} · ${song.hash.slice(0, 8)}`;
    const badge = $('.badge', li);
    badge.dataset.state = song.state;
    badge.textContent = STATE_LABELS[song.state] ?? song.state;
    const open = /** @type {HTMLButtonElement} */ ($('.recent-open', li));
    open.setAttribute('aria-label', `Open ${song.name} (${STATE_LABELS[song.state] ?? song.state})`);
    open.addEventListener('click', () => {
      openSong(song.hash, { name: song.name });
      el.song.scrollIntoView({ behavior: 'smooth', block: 'start' });
    });
    const del = /** @type {HTMLButtonElement} */ ($('.delete', li));
    const gone = song.state === 'gone';
    del.setAttribute('aria-label', gone ? `Remove ${song.name} from this list` : `Delete ${song.name} from the server`);
    del.title = gone ? 'Remove from this list' : 'Delete from the server';
    del.dataset.confirm = gone ? `Click again to remove ${song.name} from this list` : `Click again to delete ${song.name} and its stems`;
    confirmTwice(del, async () => {
      if (!gone) {
        try {
          await deleteSong(song.hash);
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) {
            $('.recent-sub', li).textContent = `Couldn’t delete: ${messageOf(err)}`;
            return;
          }
        }
      }
      forgetSong(song.hash);
      if (state.hash === song.hash) {
        closeSong();
        history.replaceState(null, '', location.pathname + location.search);
      }
      renderRecent();
      announce(`${song.name} deleted`);
    });
    return li;
  });
  el.recentList.replaceChildren(...items);
  markCurrentInRecent();
}

/** Asks the server for the state of every remembered song that may have changed. */
async function refreshRecent() {
  const list = loadRecent().filter((s) => s.state !== 'gone');
  let changed = false;
  await Promise.all(list.map(async (song) => {
    try {
      const job = await getJob(song.hash);
      changed = updateState(song.hash, job.state) || changed;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) changed = updateState(song.hash, 'gone') || changed;
    }
  }));
  if (changed) renderRecent();
}

// ---------------------------------------------------------------- boot

async function loadInfo() {
  try {
    const info = await getInfo();
    state.info = info;
    el.limitHint.textContent = `MP3 up to ${info.maxUploadMb} MB · split into ${info.tracks.join(', ')}`;
    el.serverInfo.textContent = `Model: ${info.model}`;
    document.body.dataset.server = 'up';
  } catch (err) {
    document.body.dataset.server = 'down';
    el.limitHint.textContent = 'MP3 files only';
    showUploadError(messageOf(err));
    setUploadState('idle');
  }
}

function setupSettings() {
  el.apiKey.value = getApiKey();
  el.apiKey.addEventListener('change', () => {
    setApiKey(el.apiKey.value.trim());
    clearUploadError();
    void loadInfo().then(refreshRecent);
  });
}

function exposeForTests() {
  const api = {
    get currentTime() { return player.currentTime; },
    get duration() { return player.duration; },
    get playing() { return player.playing; },
    get contextState() { return player.ctx?.state ?? 'none'; },
    get stems() {
      /** @type {Record<string, { volume: number, muted: boolean, soloed: boolean, gain: number, audible: boolean }>} */
      const out = {};
      for (const [name, s] of player.stems) {
        out[name] = { volume: s.volume, muted: s.muted, soloed: s.soloed, gain: s.target, audible: player.isAudible(s) };
      }
      return out;
    },
    play: () => player.play(),
    pause: () => player.pause(),
    /** @param {number} t */
    seek: (t) => player.seek(t),
  };
  Object.defineProperty(window, 'msaasPlayer', { value: api, configurable: true });
}

async function main() {
  exposeForTests();
  setupSettings();
  setupUpload();
  setupPlayer();
  renderRecent();
  el.recentRefresh.addEventListener('click', () => void refreshRecent());
  const fromUrl = location.hash.slice(1);
  await loadInfo();
  if (HASH_RE.test(fromUrl)) openSong(fromUrl);
  void refreshRecent();
  // Keep the list honest while something is still queued or separating.
  window.setInterval(() => {
    if (loadRecent().some((s) => s.state === 'queued' || s.state === 'processing' || s.state === 'unknown')) void refreshRecent();
  }, 10_000);
  window.addEventListener('hashchange', () => {
    const h = location.hash.slice(1);
    if (HASH_RE.test(h) && h !== state.hash) openSong(h);
  });
  document.body.dataset.ready = 'true';
}

void main();
