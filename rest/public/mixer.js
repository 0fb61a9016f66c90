// @ts-check
// The player in the song card: one row per stem (waveform, level meter, volume, Mute/Solo,
// download, delete), the transport (Play, position, "Download all") and the keyboard.
// Loads the stems when the open song's `job` is done; empties itself on `closed`.
import { deleteStem, fetchBinary, fetchBlob, getApiKey, removeOnServer, zipUrl } from './api.js';
import { StemPlayer } from './player.js';
import { $, announce, baseName, byId, cloneRow, confirmTwice, messageOf } from './ui.js';
import { Waveform, computePeaks } from './waveform.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').Track} Track */
/** @typedef {import('./events.js').Bus} Bus */
/** @typedef {'empty' | 'loading' | 'paused' | 'playing' | 'error' | 'ready'} PlayerState */

/** The stems' order until (or unless) `GET /apiv1/info` says otherwise. @type {readonly Track[]} */
const FALLBACK_TRACKS = ['drums', 'bass', 'other', 'vocals'];
/** Matches the `.c-<track>` colours in style.css. @type {Record<Track, string>} */
const STEM_COLORS = { drums: '#fbbf24', bass: '#a78bfa', other: '#34d399', vocals: '#f472b6' };

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

/** @param {Track} track */
const labelOf = (track) => track[0].toUpperCase() + track.slice(1);

/**
 * With an API key set, a plain link can't send the X-API-Key header: fetch the file and
 * hand the browser a blob instead. Without a key, the link downloads directly.
 * @param {HTMLAnchorElement} link
 * @param {(msg: string) => void} onError
 */
function downloadWithKey(link, onError) {
  link.addEventListener('click', async (e) => {
    if (!getApiKey() || link.dataset.blob === 'true') return;
    e.preventDefault();
    try {
      const url = URL.createObjectURL(await fetchBlob(link.href));
      const a = document.createElement('a');
      a.href = url;
      a.download = link.download;
      a.dataset.blob = 'true';
      document.body.append(a);
      a.click();
      a.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (err) {
      onError(`Download failed: ${messageOf(err)}`);
    }
  });
}

/**
 * A toggle button (`aria-pressed`) that reports its new state.
 * @param {HTMLButtonElement} button
 * @param {(on: boolean) => void} onToggle
 */
function pressable(button, onToggle) {
  button.addEventListener('click', () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-pressed', String(on));
    onToggle(on);
  });
}

/** @param {StemPlayer} player */
function exposeForTests(player) {
  const api = {
    get currentTime() { return player.currentTime; },
    get duration() { return player.duration; },
    get playing() { return player.playing; },
    get contextState() { return player.ctx?.state ?? 'none'; },
    get stems() {
      /** @type {Partial<Record<Track, { volume: number, muted: boolean, soloed: boolean, gain: number, audible: boolean }>>} */
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

/** @param {Bus} bus */
export function setupMixer(bus) {
  const el = byId({
    player: HTMLElement, playerMsg: HTMLElement, play: HTMLButtonElement, timeNow: HTMLElement,
    timeTotal: HTMLElement, seek: HTMLInputElement, downloadAll: HTMLAnchorElement, stems: HTMLElement,
    stemRow: HTMLTemplateElement,
  });
  const player = new StemPlayer();
  /** @type {readonly Track[]} */
  let order = FALLBACK_TRACKS;
  /** The open song's name, for download file names. */
  let songName = '';
  /** @type {string | null} the song whose stems are (being) loaded */
  let loadedFor = null;
  /** Bumped when the song changes, so a load that finishes late is dropped. */
  let loadToken = 0;
  /** @type {Map<Track, Waveform>} */
  const waves = new Map();
  /** @type {Map<Track, HTMLLIElement>} */
  const rows = new Map();
  let seekDragging = false;
  /** @type {Float32Array<ArrayBuffer>} */
  const scratch = new Float32Array(2048);
  let rafPending = false;

  /** @param {PlayerState} s */
  const setState = (s) => { el.player.dataset.state = s; };
  /** @param {string} msg */
  const say = (msg) => { el.playerMsg.textContent = msg; };

  /** @param {HTMLLIElement} row @param {boolean} on */
  function enableRow(row, on) {
    for (const c of row.querySelectorAll('input, button.toggle')) {
      /** @type {HTMLInputElement | HTMLButtonElement} */ (c).disabled = !on;
    }
  }

  /** @param {string} hash @param {Track} track @param {string} url */
  function makeStemRow(hash, track, url) {
    const row = cloneRow(el.stemRow);
    const label = labelOf(track);
    row.dataset.track = track;
    row.dataset.loaded = 'false';
    row.style.setProperty('--stem', STEM_COLORS[track]);
    $('.name', HTMLElement, row).textContent = label;
    const canvas = $('canvas', HTMLCanvasElement, row);
    canvas.setAttribute('aria-label', `${label} waveform`);
    $('.vol-label', HTMLElement, row).textContent = `${label} volume`;
    const vol = $('.vol-input', HTMLInputElement, row);
    vol.setAttribute('aria-valuetext', '100%');
    const mute = $('.mute', HTMLButtonElement, row);
    mute.setAttribute('aria-label', `Mute ${label}`);
    const solo = $('.solo', HTMLButtonElement, row);
    solo.setAttribute('aria-label', `Solo ${label}`);
    const dl = $('.download', HTMLAnchorElement, row);
    dl.href = url;
    dl.download = `${baseName(songName)}-${track}.mp3`;
    dl.setAttribute('aria-label', `Download ${label} (MP3)`);
    dl.title = `Download ${label} (MP3)`;
    const del = $('.delete', HTMLButtonElement, row);
    del.setAttribute('aria-label', `Delete the ${label} stem`);
    del.title = `Delete the ${label} stem`;
    del.dataset.confirm = `Click again to delete the ${label} stem`;
    enableRow(row, false);

    vol.addEventListener('input', () => {
      player.setVolume(track, Number(vol.value));
      vol.setAttribute('aria-valuetext', `${Math.round(Number(vol.value) * 100)}%`);
    });
    pressable(mute, (on) => player.setMuted(track, on));
    pressable(solo, (on) => player.setSoloed(track, on));
    canvas.addEventListener('pointerdown', (e) => {
      if (!player.duration) return;
      const r = canvas.getBoundingClientRect();
      player.seek(((e.clientX - r.left) / r.width) * player.duration);
    });
    downloadWithKey(dl, say);
    confirmTwice(del, async () => {
      const failure = await removeOnServer(() => deleteStem(hash, track));
      if (failure) {
        say(`Couldn’t delete the ${label} stem: ${failure}`);
        return;
      }
      player.removeStem(track);
      waves.get(track)?.destroy();
      waves.delete(track);
      rows.delete(track);
      row.remove();
      announce(`${label} stem deleted`);
      if (rows.size === 0) {
        setState('empty');
        say('No stems are left for this song.');
      }
      updateTransport();
    });
    rows.set(track, row);
    return row;
  }

  /** @param {JobView} job */
  async function loadStems(job) {
    if (loadedFor === job.hash) return;
    loadedFor = job.hash;
    const token = ++loadToken;
    /** @type {[Track, string][]} */
    const stems = order.flatMap((t) => {
      const url = job.stems[t];
      return url ? [/** @type {[Track, string]} */ ([t, url])] : [];
    });
    const tracks = stems.map(([t]) => t);
    el.player.hidden = false;
    el.stems.replaceChildren();
    rows.clear();
    player.clear();
    if (stems.length === 0) {
      setState('empty');
      say('No stems are left for this song. Delete it, or upload it again to separate it anew.');
      updateTransport();
      return;
    }
    setState('loading');
    say(`Loading ${stems.length} stems…`);
    for (const [t, url] of stems) el.stems.append(makeStemRow(job.hash, t, url));
    updateTransport();
    let loaded = 0;
    const results = await Promise.allSettled(stems.map(async ([t, url]) => {
      const buffer = await player.decode(await fetchBinary(url));
      if (token !== loadToken) return;
      player.addStem(t, buffer);
      const row = rows.get(t);
      if (row) {
        row.dataset.loaded = 'true';
        waves.set(t, new Waveform($('canvas', HTMLCanvasElement, row), computePeaks(buffer), STEM_COLORS[t], buffer.duration));
        enableRow(row, true);
      }
      loaded++;
      say(`Loading stems… ${loaded} of ${stems.length}`);
    }));
    if (token !== loadToken) return;
    /** @type {[Track, unknown][]} */
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [/** @type {[Track, unknown]} */ ([tracks[i], r.reason])] : []));
    for (const [t] of failed) {
      const row = rows.get(t);
      if (row) row.dataset.loaded = 'error';
    }
    if (failed.length === stems.length) {
      setState('error');
      say(`Couldn’t load the stems: ${messageOf(failed[0][1])}`);
    } else {
      setState('ready');
      say(failed.length ? `Couldn’t load ${failed.map(([t]) => t).join(', ')}: ${messageOf(failed[0][1])}` : '');
      announce(`Stems ready: ${tracks.filter((t) => player.stems.has(t)).join(', ')}. Press Play to listen.`);
    }
    updateTransport();
    drawFrame();
  }

  function clear() {
    loadedFor = null;
    loadToken++;
    player.clear();
    for (const w of waves.values()) w.destroy();
    waves.clear();
    rows.clear();
    el.stems.replaceChildren();
    el.player.hidden = true;
    setState('empty');
  }

  function updateTransport() {
    const ready = player.stems.size > 0;
    el.play.disabled = !ready;
    el.seek.disabled = !ready;
    el.play.setAttribute('aria-label', player.playing ? 'Pause' : 'Play');
    el.play.dataset.playing = String(player.playing);
    el.seek.max = String(player.duration || 1);
    el.timeTotal.textContent = formatTime(player.duration);
    if (ready && el.player.dataset.state !== 'loading') setState(player.playing ? 'playing' : 'paused');
    for (const [name, row] of rows) {
      const stem = player.stems.get(name);
      if (!stem) continue;
      row.dataset.audible = String(player.isAudible(stem));
      row.dataset.gain = stem.target.toFixed(2);
    }
  }

  function drawFrame() {
    player.tick();
    const t = player.currentTime;
    el.timeNow.textContent = formatTime(t);
    if (!seekDragging) el.seek.value = String(t);
    el.seek.setAttribute('aria-valuetext', `${spokenTime(t)} of ${spokenTime(player.duration)}`);
    for (const wave of waves.values()) wave.draw(t, player.duration);
    for (const [name, row] of rows) {
      const stem = player.stems.get(name);
      if (!stem) continue;
      const level = player.level(stem, scratch) * (stem.target > 0 ? 1 : 0);
      const db = level > 0 ? 20 * Math.log10(level) : -60;
      $('.meter-fill', HTMLElement, row).style.transform = `scaleY(${Math.max(0, Math.min(1, (db + 48) / 48)).toFixed(3)})`;
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
  /** Seconds each key moves the position slider by. @type {Record<string, number>} */
  const jumps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -15, PageUp: 15 };
  el.seek.addEventListener('keydown', (e) => {
    const jump = jumps[e.key];
    if (jump !== undefined) {
      e.preventDefault();
      player.seek(player.currentTime + jump);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      player.seek(e.key === 'Home' ? 0 : player.duration);
    }
  });
  // Space toggles playback unless focus is on something that uses Space itself.
  document.addEventListener('keydown', (e) => {
    if (e.key !== ' ' || e.repeat || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof Element && t !== document.body && t.closest('button, a, input, textarea, select, summary, [contenteditable]')) return;
    if (el.play.disabled) return;
    e.preventDefault();
    el.play.click();
  });
  window.addEventListener('resize', scheduleFrame);
  downloadWithKey(el.downloadAll, say);
  exposeForTests(player);

  bus.on('info', (info) => { order = info.tracks; });
  bus.on('opened', ({ hash, name }) => {
    songName = name;
    el.downloadAll.href = zipUrl(hash);
    el.downloadAll.download = `${baseName(name)}-stems.zip`;
  });
  bus.on('job', (job) => {
    if (job.state === 'done') void loadStems(job);
  });
  bus.on('closed', clear);
}
