// @ts-check
// The player in the song card: one row per stem (waveform, level meter, volume, Mute/Solo,
// download, delete), the transport (Play, position, "Download all") and the keyboard.
// While the open song is being separated it plays the part that is ready (the job's `live`
// pieces, fetched as they appear); when the job is done it loads the finished stems and swaps
// to them at the current position. Empties itself on `closed`.
import { deleteStem, fetchBinary, fetchBlob, getApiKey, mixUrl, removeOnServer, zipUrl } from './api.js';
import { LIVE_RATE, PieceLoader } from './live.js';
import { defaultMix, formatFragment, mixGains, parseFragment } from './mixstate.js';
import { fillFormatSelect, stemFiles } from './formats.js';
import { StemPlayer } from './player.js';
import { $, announce, baseName, byId, cloneRow, confirmTwice, messageOf } from './ui.js';
import { COLUMNS, Waveform, addPeaks, computePeaks } from './waveform.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').Stem} Track a stem's name (the model's four and instrumental) */
/** @typedef {import('./api.js').OutputFormatView} OutputFormatView */
/** @typedef {import('./formats.js').StemFile} StemFile */
/** @typedef {import('./events.js').Bus} Bus */
/** @typedef {'empty' | 'loading' | 'paused' | 'playing' | 'waiting' | 'error' | 'ready'} PlayerState */

/** The stems' order until (or unless) `GET /apiv1/info` says otherwise. @type {readonly Track[]} */
const FALLBACK_TRACKS = ['drums', 'bass', 'other', 'vocals', 'instrumental'];
/** Matches the `.c-<track>` colours in style.css. @type {Record<Track, string>} */
const STEM_COLORS = { drums: '#fbbf24', bass: '#a78bfa', other: '#34d399', vocals: '#f472b6', instrumental: '#60a5fa' };

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

/** A stem whose loudest sample is below this (dBFS) is shown as silent rather than as a flat line. */
const SILENT_DBFS = -60;
/** Pixels a pointer must move across a waveform before it selects a loop instead of seeking. */
const DRAG_PX = 6;

/** Whether a key press there types text (so Space is not play/pause). @param {EventTarget | null} t */
function typesText(t) {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return true;
  return t instanceof HTMLInputElement && !['range', 'checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'color'].includes(t.type);
}

/** @param {number} semitones */
const formatSemitones = (semitones) => (semitones === 0 ? '±0 st' : `${semitones > 0 ? '+' : '−'}${Math.abs(semitones)} st`);

/** @param {Track} track */
const labelOf = (track) => track[0].toUpperCase() + track.slice(1);

/**
 * With an API key set, a plain link can't send the X-API-Key header: fetch the file and
 * hand the browser a blob instead. Without a key, the link downloads directly.
 * @param {HTMLAnchorElement} link
 * @param {(msg: string) => void} onError
 * @param {AbortSignal} [signal] removes the listener
 */
function downloadWithKey(link, onError, signal) {
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
  }, { signal });
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
    /** Seconds playable so far (the whole song once complete). */
    get ready() { return player.ready; },
    /** Whether the finished stems are playing (false while the song is being separated). */
    get complete() { return player.complete; },
    /** Play is on but the position is past the ready part: waiting there. */
    get stalled() { return player.stalled; },
    get stems() {
      /** @type {Partial<Record<Track, { volume: number, muted: boolean, soloed: boolean, gain: number, audible: boolean }>>} */
      const out = {};
      for (const [name, s] of player.stems) {
        out[name] = { volume: s.volume, muted: s.muted, soloed: s.soloed, gain: s.target, audible: player.isAudible(s) };
      }
      return out;
    },
    get tempo() { return player.tempo; },
    get pitch() { return player.pitch; },
    get master() { return player.masterVolume; },
    get loop() { return player.loop; },
    get shifting() { return player.shifting; },
    play: () => player.play(),
    pause: () => player.pause(),
    /** @param {number} t */
    seek: (t) => player.seek(t),
    /**
     * The current mix rendered offline (one channel's samples and the rate), for measuring.
     * @param {{ from?: number, seconds?: number }} [opts]
     */
    render: async (opts) => {
      const buffer = await player.renderMix(opts);
      return { sampleRate: buffer.sampleRate, samples: Array.from(buffer.getChannelData(0)) };
    },
  };
  Object.defineProperty(window, 'msaasPlayer', { value: api, configurable: true });
}

/**
 * @param {Bus} bus
 * @returns {{ destroy: () => void }} destroy: stops playback and fetching, releases its listeners
 */
export function setupMixer(bus) {
  const el = byId({
    player: HTMLElement, playerMsg: HTMLElement, play: HTMLButtonElement, timeNow: HTMLElement,
    timeTotal: HTMLElement, timeReady: HTMLElement, seekReady: HTMLElement,
    seek: HTMLInputElement, downloadAll: HTMLAnchorElement, stems: HTMLElement,
    stemRow: HTMLTemplateElement, tempo: HTMLInputElement, tempoOut: HTMLOutputElement, pitch: HTMLInputElement,
    pitchOut: HTMLOutputElement, master: HTMLInputElement, masterOut: HTMLOutputElement, loopA: HTMLButtonElement,
    loopB: HTMLButtonElement, loopToggle: HTMLButtonElement, loopText: HTMLElement, practiceReset: HTMLButtonElement,
    downloadMix: HTMLAnchorElement, mixFormat: HTMLSelectElement,
  });
  const player = new StemPlayer();
  /** @type {readonly Track[]} */
  let order = FALLBACK_TRACKS;
  /** @type {readonly OutputFormatView[]} the output formats (`GET /apiv1/info`) */
  let formats = [];
  /** The open song's name, for download file names. */
  let songName = '';
  /** @type {string | null} the song whose stems are (being) loaded */
  let loadedFor = null;
  /** @type {string | null} the open song */
  let openHash = null;
  /** @type {{ a: number | null, b: number | null }} the loop's ends as set (the loop plays when both are and Loop is on) */
  const loopPoints = { a: null, b: null };
  /** @type {{ a: number, b: number } | null} a selection being dragged across a waveform */
  let dragLoop = null;
  let urlTimer = 0;
  /** Whether the URL's mix has been applied: until then the mixer must not overwrite it. */
  let urlMixRead = false;
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
  /** Everything this view listens to outside its own rows, released by destroy(). */
  const subscriptions = new AbortController();
  const { signal } = subscriptions;
  /** @type {(() => void)[]} bus handlers to remove */
  const offs = [];
  /** @type {PieceLoader | null} fetching the open song's pieces while it is separated */
  let loader = null;
  /** @type {string | null} the song playing from its pieces (until its finished stems are in) */
  let liveFor = null;
  /** Frames the live waveforms' columns span (the song's length as known when it opened). */
  let liveFrames = 0;
  /** @type {Map<Track, Float32Array>} the live waveforms' peaks, growing piece by piece */
  const livePeaks = new Map();
  /** Whether the player message is the "waiting for the separation" one (cleared when playback resumes). */
  let sayingWait = false;

  /** @param {PlayerState} s */
  const setState = (s) => { el.player.dataset.state = s; };
  /** @param {string} msg */
  const say = (msg) => {
    sayingWait = false;
    el.playerMsg.textContent = msg;
  };

  /** @param {HTMLLIElement} row @param {boolean} on */
  function enableRow(row, on) {
    for (const c of row.querySelectorAll('input, button.toggle')) {
      /** @type {HTMLInputElement | HTMLButtonElement} */ (c).disabled = !on;
    }
  }

  /**
   * Points a row's download at the stem's file, named and labelled from what the file is
   * (`<song>-vocals.flac`, "Download Vocals (FLAC)"); none yet (live): the link waits.
   * @param {HTMLLIElement} row @param {Track} track @param {StemFile | null} file
   */
  function setRowFile(row, track, file) {
    const dl = $('.download', HTMLAnchorElement, row);
    const label = labelOf(track);
    dl.href = file?.url ?? '';
    row.dataset.ext = file?.format.ext ?? '';
    row.dataset.format = file?.format.name ?? '';
    dl.download = file ? `${baseName(songName)}-${track}.${file.format.ext}` : '';
    const what = file ? `Download ${label} (${file.format.short})` : `Download ${label}`;
    dl.setAttribute('aria-label', what);
    dl.title = what;
  }

  /** @param {string} hash @param {Track} track @param {StemFile | null} file */
  function makeStemRow(hash, track, file) {
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
    const volNum = $('.vol-num', HTMLInputElement, row);
    volNum.setAttribute('aria-label', `${label} volume, percent`);
    const mute = $('.mute', HTMLButtonElement, row);
    mute.setAttribute('aria-label', `Mute ${label}`);
    const solo = $('.solo', HTMLButtonElement, row);
    solo.setAttribute('aria-label', `Solo ${label}`);
    const dl = $('.download', HTMLAnchorElement, row);
    setRowFile(row, track, file);
    const del = $('.delete', HTMLButtonElement, row);
    del.setAttribute('aria-label', `Delete the ${label} stem`);
    del.title = `Delete the ${label} stem`;
    del.dataset.confirm = `Click again to delete the ${label} stem`;
    enableRow(row, false);

    vol.addEventListener('input', () => setStemVolume(track, Number(vol.value)));
    volNum.addEventListener('input', () => {
      if (volNum.value.trim() === '') return;
      const pct = Number(volNum.value);
      setStemVolume(track, Number.isFinite(pct) ? pct / 100 : 1);
    });
    pressable(mute, (on) => player.setMuted(track, on));
    pressable(solo, (on) => player.setSoloed(track, on));
    // Click: seek. Drag across: select a passage and loop it.
    /** @type {{ x: number, t: number, id: number } | null} */
    let press = null;
    /** @param {PointerEvent} e */
    const timeAt = (e) => {
      const r = canvas.getBoundingClientRect();
      return Math.min(1, Math.max(0, (e.clientX - r.left) / r.width)) * player.duration;
    };
    canvas.addEventListener('pointerdown', (e) => {
      if (!player.duration) return;
      press = { x: e.clientX, t: timeAt(e), id: e.pointerId };
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!press || e.pointerId !== press.id || Math.abs(e.clientX - press.x) < DRAG_PX) return;
      const t = timeAt(e);
      dragLoop = { a: Math.min(press.t, t), b: Math.max(press.t, t) };
      scheduleFrame();
    });
    canvas.addEventListener('pointerup', (e) => {
      if (!press || e.pointerId !== press.id) return;
      const start = press;
      press = null;
      if (dragLoop) {
        const sel = dragLoop;
        dragLoop = null;
        setLoopPoints(sel.a, sel.b, true);
      } else {
        player.seek(start.t);
      }
    });
    canvas.addEventListener('pointercancel', () => {
      press = null;
      dragLoop = null;
      scheduleFrame();
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

  /**
   * The song is being separated and pieces exist: rows for its stems, silent buffers of the
   * song's length in the player, and the pieces fetched in order into both.
   * @param {JobView} job
   */
  function startLive(job) {
    const live = job.live;
    if (!live || liveFor === job.hash || loadedFor === job.hash) return;
    liveFor = job.hash;
    const token = ++loadToken;
    const streamed = Object.keys(live.streams);
    /** @type {Track[]} */
    // the stems the song will have (`streams`; instrumental is summed from the pieces' parts), else the pieces' own
    const tracks = order.filter((t) => (streamed.length > 0 ? streamed.includes(t) : /** @type {readonly string[]} */ (live.stems).includes(t)));
    const listed = live.pieceEnds[live.pieceEnds.length - 1] ?? 0;
    liveFrames = Math.max(listed, job.totalFrames ?? Math.round((job.audioSec ?? 0) * LIVE_RATE), 1);
    el.player.hidden = false;
    el.player.dataset.live = 'true';
    for (const w of waves.values()) w.destroy();
    waves.clear();
    livePeaks.clear();
    el.stems.replaceChildren();
    rows.clear();
    player.startLive(tracks, liveFrames, LIVE_RATE);
    setState('loading');
    say('Fetching the part that is separated already…');
    for (const t of tracks) {
      const row = makeStemRow(job.hash, t, null);
      row.dataset.live = 'true';
      el.stems.append(row);
      const peaks = new Float32Array(COLUMNS);
      livePeaks.set(t, peaks);
      waves.set(t, new Waveform($('canvas', HTMLCanvasElement, row), peaks, STEM_COLORS[t], liveFrames / LIVE_RATE));
    }
    updateTransport();
    let first = true;
    loader = new PieceLoader(live.pieceUrl, tracks, {
      onPiece: (piece) => {
        if (token !== loadToken) return;
        const grew = piece.end > liveFrames;
        if (grew) liveFrames = piece.end;
        for (const t of tracks) {
          const channels = piece.stems.get(t);
          if (!channels) continue;
          player.write(t, piece.start, channels);
          let peaks = livePeaks.get(t) ?? new Float32Array(COLUMNS);
          // A song longer than first known: its peaks are spread again over the new length.
          if (grew) peaks = computePeaks(/** @type {AudioBuffer} */ (player.stems.get(t)?.buffer));
          else addPeaks(peaks, channels, piece.start, liveFrames);
          livePeaks.set(t, peaks);
          waves.get(t)?.update(peaks, liveFrames / LIVE_RATE);
        }
        player.setReady(piece.end / LIVE_RATE);
        if (first) {
          first = false;
          for (const row of rows.values()) {
            row.dataset.loaded = 'true';
            enableRow(row, true);
          }
          setState('ready');
          say('');
          announce(`The first ${Math.round(piece.end / LIVE_RATE)} seconds are ready. Press Play to listen while the rest is separated.`);
          applyUrlMix();
        }
        updateTransport();
        scheduleFrame();
      },
      onError: (err) => {
        if (token !== loadToken) return;
        // The finished stems (or the job's failure) come through the job's events anyway.
        if (player.ready === 0) say(`Couldn’t fetch the separated part: ${messageOf(err)}`);
      },
    });
    loader.update(live.pieceEnds);
  }

  /**
   * The song playing from its pieces is done: its finished stems are decoded (the pieces keep
   * coming meanwhile) and replace the pieces' buffers at the current position.
   * @param {JobView} job
   */
  async function finishLive(job) {
    const token = loadToken;
    loader?.update(job.pieceEnds);
    const files = stemFiles(job, order, formats).filter((f) => rows.has(f.stem));
    const results = await Promise.allSettled(files.map(async ({ stem, url }) => /** @type {[Track, AudioBuffer]} */ ([stem, await player.decode(await fetchBinary(url))])));
    if (token !== loadToken) return;
    loader?.stop();
    loader = null;
    liveFor = null;
    /** @type {Map<Track, AudioBuffer>} */
    const buffers = new Map();
    for (const r of results) if (r.status === 'fulfilled') buffers.set(r.value[0], r.value[1]);
    // A stem the job no longer lists (deleted meanwhile) goes; one that failed to load keeps its pieces.
    for (const [t, row] of [...rows]) {
      if (files.some((f) => f.stem === t)) continue;
      player.removeStem(t);
      waves.get(t)?.destroy();
      waves.delete(t);
      rows.delete(t);
      row.remove();
    }
    player.finish(buffers);
    livePeaks.clear();
    el.player.dataset.live = 'false';
    for (const file of files) {
      const t = file.stem;
      const row = rows.get(t);
      const buffer = buffers.get(t);
      if (!row) continue;
      row.dataset.live = 'false';
      setRowFile(row, t, file);
      if (!buffer) {
        row.dataset.loaded = 'error';
        continue;
      }
      const peaks = computePeaks(buffer);
      waves.get(t)?.update(peaks, buffer.duration);
      markSilence(row, t, peaks);
      enableRow(row, true);
    }
    const failed = files.filter((f) => !buffers.has(f.stem));
    say(failed.length ? `Couldn’t load the finished ${failed.map((f) => f.stem).join(', ')}: the separated part keeps playing.` : '');
    followSong(job);
    announce('Separation done: the finished stems are playing now.');
    updateTransport();
    scheduleFrame();
  }

  /** @param {JobView} job */
  async function loadStems(job) {
    if (loadedFor === job.hash) return;
    loadedFor = job.hash;
    if (liveFor === job.hash) {
      await finishLive(job);
      return;
    }
    const token = ++loadToken;
    const files = stemFiles(job, order, formats);
    const tracks = files.map((f) => f.stem);
    followSong(job);
    el.player.hidden = false;
    el.stems.replaceChildren();
    rows.clear();
    player.clear();
    if (files.length === 0) {
      setState('empty');
      say('No stems are left for this song. Delete it, or upload it again to separate it anew.');
      updateTransport();
      return;
    }
    setState('loading');
    say(`Loading ${files.length} stems…`);
    for (const file of files) el.stems.append(makeStemRow(job.hash, file.stem, file));
    updateTransport();
    let loaded = 0;
    const results = await Promise.allSettled(files.map(async ({ stem: t, url }) => {
      const buffer = await player.decode(await fetchBinary(url));
      if (token !== loadToken) return;
      player.addStem(t, buffer);
      const row = rows.get(t);
      if (row) {
        row.dataset.loaded = 'true';
        const peaks = computePeaks(buffer);
        waves.set(t, new Waveform($('canvas', HTMLCanvasElement, row), peaks, STEM_COLORS[t], buffer.duration));
        markSilence(row, t, peaks);
        enableRow(row, true);
      }
      loaded++;
      say(`Loading stems… ${loaded} of ${files.length}`);
    }));
    if (token !== loadToken) return;
    /** @type {[Track, unknown][]} */
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [/** @type {[Track, unknown]} */ ([tracks[i], r.reason])] : []));
    for (const [t] of failed) {
      const row = rows.get(t);
      if (row) row.dataset.loaded = 'error';
    }
    if (failed.length === files.length) {
      setState('error');
      say(`Couldn’t load the stems: ${messageOf(failed[0][1])}`);
    } else {
      setState('ready');
      say(failed.length ? `Couldn’t load ${failed.map(([t]) => t).join(', ')}: ${messageOf(failed[0][1])}` : '');
      announce(`Stems ready: ${tracks.filter((t) => player.stems.has(t)).join(', ')}. Press Play to listen.`);
    }
    applyUrlMix();
    updateTransport();
    drawFrame();
  }

  /**
   * A stem that stays below SILENT_DBFS says “No vocals detected” (or its own name) instead of
   * drawing a flat line that looks broken.
   * @param {HTMLLIElement} row @param {Track} track @param {Float32Array} peaks
   */
  function markSilence(row, track, peaks) {
    let peak = 0;
    for (const p of peaks) if (p > peak) peak = p;
    const db = peak > 0 ? 20 * Math.log10(peak) : -Infinity;
    const silent = db < SILENT_DBFS;
    row.dataset.silent = String(silent);
    row.dataset.peakDb = Number.isFinite(db) ? db.toFixed(1) : '-inf';
    const note = $('.silent-note', HTMLElement, row);
    note.hidden = !silent;
    note.textContent = silent ? `No ${track} detected` : '';
    $('canvas', HTMLCanvasElement, row).setAttribute('aria-label', silent ? `${labelOf(track)} waveform: no ${track} detected (silent stem)` : `${labelOf(track)} waveform`);
  }

  /** @param {Track} track @param {number} volume 0..1 */
  function setStemVolume(track, volume) {
    const v = Math.min(1, Math.max(0, volume));
    player.setVolume(track, v);
    const row = rows.get(track);
    if (!row) return;
    $('.vol-input', HTMLInputElement, row).value = String(v);
    $('.vol-input', HTMLInputElement, row).setAttribute('aria-valuetext', `${Math.round(v * 100)}%`);
    $('.vol-num', HTMLInputElement, row).value = String(Math.round(v * 100));
  }

  /** @param {Track} track @param {'mute' | 'solo'} which @param {boolean} on */
  function setToggle(track, which, on) {
    const row = rows.get(track);
    if (row) $(`.${which}`, HTMLButtonElement, row).setAttribute('aria-pressed', String(on));
    if (which === 'mute') player.setMuted(track, on);
    else player.setSoloed(track, on);
  }

  /**
   * @param {number | null} a @param {number | null} b
   * @param {boolean} [on] turn the loop on (or off); unchanged when absent
   */
  function setLoopPoints(a, b, on) {
    loopPoints.a = a;
    loopPoints.b = b;
    const complete = a !== null && b !== null && b - a >= 0.1;
    const active = complete && (on ?? el.loopToggle.getAttribute('aria-pressed') === 'true');
    el.loopToggle.disabled = !complete;
    el.loopToggle.setAttribute('aria-pressed', String(active));
    player.setLoop(active && a !== null && b !== null ? { a, b } : null);
    el.loopText.textContent = a === null && b === null
      ? 'Drag across a waveform to loop a passage.'
      : `A ${a === null ? '–' : formatTime(a)} · B ${b === null ? '–' : formatTime(b)}${active ? ' · looping' : ''}`;
    scheduleFrame();
  }

  /** @param {number} tempo 0.5..1.5 */
  async function setTempo(tempo) {
    const pending = player.setTempo(tempo);
    el.tempo.value = String(Math.round(player.tempo * 100));
    el.tempoOut.value = `${Math.round(player.tempo * 100)} %`;
    await pending;
    if (player.shiftError) say(`Tempo changes the key here: the pitch shifter did not load (${player.shiftError}).`);
  }

  /** @param {number} semitones */
  async function setPitch(semitones) {
    const pending = player.setPitch(semitones);
    el.pitch.value = String(player.pitch);
    el.pitchOut.value = formatSemitones(player.pitch);
    await pending;
    if (player.shiftError) say(`The key can’t be changed here: the pitch shifter did not load (${player.shiftError}).`);
  }

  /** @param {number} volume 0..1 */
  function setMaster(volume) {
    player.setMasterVolume(volume);
    el.master.value = String(Math.round(player.masterVolume * 100));
    el.masterOut.value = `${Math.round(player.masterVolume * 100)} %`;
  }

  /** The mixer's state, as the URL and the mix download carry it. */
  function currentMix() {
    const mix = defaultMix();
    // In the tracks' order, not in the order the stems finished decoding.
    for (const name of order) {
      const stem = player.stems.get(name);
      if (!stem) continue;
      mix.volumes[name] = stem.volume;
      if (stem.muted) mix.mutes.push(name);
      if (stem.soloed) mix.solos.push(name);
    }
    mix.master = player.masterVolume;
    mix.loop = player.loop;
    mix.tempo = player.tempo;
    mix.pitch = player.pitch;
    return mix;
  }

  /** Applies the mix the URL carries for this song (once its stems are in). */
  function applyUrlMix() {
    urlMixRead = true;
    const { hash, mix } = parseFragment(location.hash, order);
    if (!mix || hash !== openHash) return;
    for (const t of player.stems.keys()) {
      setStemVolume(t, mix.volumes[t] ?? 1);
      setToggle(t, 'mute', mix.mutes.includes(t));
      setToggle(t, 'solo', mix.solos.includes(t));
    }
    setMaster(mix.master);
    if (mix.loop) setLoopPoints(mix.loop.a, mix.loop.b, true);
    if (mix.tempo !== 1) void setTempo(mix.tempo);
    if (mix.pitch !== 0) void setPitch(mix.pitch);
  }

  /** Writes the mix into the URL (replacing, not adding history) and into the mix download link. */
  function syncMix() {
    window.clearTimeout(urlTimer);
    urlTimer = window.setTimeout(() => {
      if (!openHash || player.stems.size === 0 || !urlMixRead) return;
      const mix = currentMix();
      const fragment = formatFragment(openHash, mix, order);
      if (location.hash !== fragment) history.replaceState(null, '', fragment);
      const format = el.mixFormat.value;
      el.downloadMix.href = mixUrl(openHash, mixGains(mix, order.filter((t) => player.stems.has(t))), format);
      el.downloadMix.download = `${baseName(songName)}-mix.${formats.find((f) => f.name === format)?.ext ?? format}`;
    }, 150);
  }

  /**
   * The mix follows the song: its format picker starts at the song's own format, and with no stem
   * to mix the link is disabled, saying why.
   * @param {JobView} job
   */
  function followSong(job) {
    const own = job.formats.find((f) => formats.some((o) => o.name === f));
    if (own) el.mixFormat.value = own;
    const none = stemFiles(job, order, formats).length === 0;
    el.downloadMix.setAttribute('aria-disabled', String(none));
    el.downloadMix.title = none ? 'No stems are left to mix.' : 'The stems mixed on the server as you hear them';
    if (none) el.downloadMix.removeAttribute('href');
    syncMix();
  }

  function clear() {
    loadedFor = null;
    liveFor = null;
    loader?.stop();
    loader = null;
    livePeaks.clear();
    el.player.dataset.live = 'false';
    urlMixRead = false;
    loadToken++;
    player.clear();
    setLoopPoints(null, null, false);
    void setTempo(1);
    void setPitch(0);
    setMaster(1);
    for (const w of waves.values()) w.destroy();
    waves.clear();
    rows.clear();
    el.stems.replaceChildren();
    el.player.hidden = true;
    setState('empty');
  }

  function updateTransport() {
    const ready = player.stems.size > 0 && player.ready > 0;
    el.play.disabled = !ready;
    el.seek.disabled = !ready;
    el.play.setAttribute('aria-label', player.playing ? 'Pause' : 'Play');
    el.play.dataset.playing = String(player.playing);
    el.seek.max = String(player.duration || 1);
    el.timeTotal.textContent = formatTime(player.duration);
    // The part separated so far, on the position slider and beside the time.
    const share = player.duration > 0 ? Math.min(1, player.ready / player.duration) : 1;
    el.seekReady.style.width = `${(share * 100).toFixed(2)}%`;
    el.seekReady.hidden = player.complete;
    el.timeReady.textContent = player.complete ? '' : ` · ${formatTime(player.ready)} ready`;
    if (ready && el.player.dataset.state !== 'loading') setState(player.stalled ? 'waiting' : player.playing ? 'playing' : 'paused');
    if (player.stalled) {
      el.playerMsg.textContent = `Waiting at ${formatTime(player.currentTime)} for the separation — ready up to ${formatTime(player.ready)} so far; playback goes on by itself when it gets there.`;
      sayingWait = true;
    } else if (sayingWait) {
      say('');
    }
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
    el.seek.setAttribute('aria-valuetext', `${spokenTime(t)} of ${spokenTime(player.duration)}${player.complete ? '' : `, ${spokenTime(player.ready)} separated so far`}`);
    const loop = dragLoop ?? player.loop ?? (loopPoints.a !== null && loopPoints.b !== null ? { a: loopPoints.a, b: loopPoints.b } : null);
    for (const wave of waves.values()) wave.draw(t, player.duration, loop, player.ready);
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
    syncMix();
  };
  el.tempo.addEventListener('input', () => void setTempo(Number(el.tempo.value) / 100), { signal });
  el.pitch.addEventListener('input', () => void setPitch(Number(el.pitch.value)), { signal });
  el.master.addEventListener('input', () => setMaster(Number(el.master.value) / 100), { signal });
  el.loopA.addEventListener('click', () => {
    const t = player.currentTime;
    setLoopPoints(t, loopPoints.b !== null && loopPoints.b > t ? loopPoints.b : null);
  }, { signal });
  el.loopB.addEventListener('click', () => {
    const t = player.currentTime;
    if (loopPoints.a === null || t <= loopPoints.a) setLoopPoints(0, t, true);
    else setLoopPoints(loopPoints.a, t, true);
  }, { signal });
  el.loopToggle.addEventListener('click', () => setLoopPoints(loopPoints.a, loopPoints.b, el.loopToggle.getAttribute('aria-pressed') !== 'true'), { signal });
  el.practiceReset.addEventListener('click', () => {
    setLoopPoints(null, null, false);
    void setTempo(1);
    void setPitch(0);
    setMaster(1);
  }, { signal });
  el.mixFormat.addEventListener('change', syncMix, { signal });
  downloadWithKey(el.downloadMix, say, signal);
  el.play.addEventListener('click', () => {
    if (player.playing) player.pause();
    else void player.play();
  }, { signal });
  el.seek.addEventListener('pointerdown', () => { seekDragging = true; }, { signal });
  el.seek.addEventListener('pointerup', () => { seekDragging = false; }, { signal });
  el.seek.addEventListener('input', () => player.seek(Number(el.seek.value)), { signal });
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
  }, { signal });
  // Space is play/pause wherever focus is (Mute, a slider, a link…), unless it is in a text field.
  // Captured before the focused control sees it; the keyup is swallowed too, because a focused
  // button would otherwise take Space's keyup as a click.
  let spaceTaken = false;
  document.addEventListener('keydown', (e) => {
    if (e.key !== ' ' || e.ctrlKey || e.metaKey || e.altKey || typesText(e.target) || el.play.disabled || el.player.hidden) return;
    e.preventDefault();
    e.stopPropagation();
    spaceTaken = true;
    if (e.repeat) return;
    if (player.playing) player.pause();
    else void player.play();
  }, { capture: true, signal });
  document.addEventListener('keyup', (e) => {
    if (e.key !== ' ' || !spaceTaken) return;
    spaceTaken = false;
    e.preventDefault();
    e.stopPropagation();
  }, { capture: true, signal });
  window.addEventListener('resize', scheduleFrame, { signal });
  downloadWithKey(el.downloadAll, say, signal);
  exposeForTests(player);

  offs.push(bus.on('info', (info) => {
    order = info.stems;
    formats = info.formats;
    fillFormatSelect(el.mixFormat, formats, (f) => f.short, el.mixFormat.value || info.defaultFormat);
  }));
  /** @param {string} name */
  function nameDownloads(name) {
    songName = name;
    el.downloadAll.download = `${baseName(name)}-stems.zip`;
    for (const [track, row] of rows) {
      if (row.dataset.ext) $('.download', HTMLAnchorElement, row).download = `${baseName(name)}-${track}.${row.dataset.ext}`;
    }
    syncMix();
  }
  offs.push(bus.on('opened', ({ hash, name }) => {
    openHash = hash;
    el.downloadAll.href = zipUrl(hash);
    nameDownloads(name);
  }));
  offs.push(bus.on('named', ({ hash, name }) => {
    if (hash === openHash) nameDownloads(name);
  }));
  offs.push(bus.on('job', (job) => {
    if (job.hash !== openHash) return;
    if (job.state === 'done') void loadStems(job);
    else if (liveFor === job.hash) loader?.update(job.live?.pieceEnds ?? job.pieceEnds);
    else if (job.live && job.live.pieceEnds.length > 0) startLive(job);
    if (job.state === 'failed' && liveFor === job.hash) {
      loader?.stop();
      if (player.ready > 0) say(`The separation failed; the first ${formatTime(player.ready)} can still be played.`);
    }
  }));
  offs.push(bus.on('closed', () => {
    openHash = null;
    clear();
  }));

  return {
    destroy() {
      clear();
      subscriptions.abort();
      for (const off of offs) off();
      offs.length = 0;
      window.clearTimeout(urlTimer);
      if (Object.getOwnPropertyDescriptor(window, 'msaasPlayer')) Reflect.deleteProperty(window, 'msaasPlayer');
      void player.ctx?.close();
    },
  };
}
