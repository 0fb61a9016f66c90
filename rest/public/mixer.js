// @ts-check
// The player in the song card: one row per stem the song has (stem-row.js), the transport (Play,
// position, the part separated so far), the practice controls (practice.js), the keys (keyboard.js),
// the mix in the URL (url-mix.js) and the downloads (downloads.js). While the open song is being
// separated it plays the part that is ready (the job's `live` pieces, fetched as they appear); when
// the job is done it loads the finished stems and swaps to them at the current position. Empties
// itself on `closed`; destroy() releases everything its views subscribed.
import { deleteStem, fetchBinary, removeOnServer } from './api.js';
import { SongDownloads, labelOf } from './downloads.js';
import { stemFiles } from './formats.js';
import { playerKeys } from './keyboard.js';
import { LIVE_RATE, PieceLoader } from './live.js';
import { defaultMix, mixGains } from './mixstate.js';
import { StemPlayer } from './player.js';
import { PracticeControls, formatTime } from './practice.js';
import { StemRow } from './stem-row.js';
import { announce, byId, messageOf } from './ui.js';
import { UrlMix } from './url-mix.js';
import { COLUMNS, Waveform, addPeaks, computePeaks } from './waveform.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').Stem} Track a stem's name (the model's four and instrumental) */
/** @typedef {import('./formats.js').StemFile} StemFile */
/** @typedef {import('./mixstate.js').MixState} MixState */
/** @typedef {import('./page-bus.js').Bus} Bus */
/** @typedef {'empty' | 'loading' | 'paused' | 'playing' | 'waiting' | 'error' | 'ready'} PlayerState */

/** The stems' order until (or unless) `GET /apiv1/info` says otherwise. @type {readonly Track[]} */
const FALLBACK_TRACKS = ['drums', 'bass', 'other', 'vocals', 'instrumental'];
/** Matches the `.c-<track>` colours in style.css. @type {Record<Track, string>} */
const STEM_COLORS = { drums: '#fbbf24', bass: '#a78bfa', other: '#34d399', vocals: '#f472b6', instrumental: '#60a5fa' };

/** @param {number} s */
function spokenTime(s) {
  const m = Math.floor(s / 60);
  const sec = Math.floor(s - m * 60);
  return m ? `${m} min ${sec} s` : `${sec} s`;
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
  /** @type {string | null} the song whose stems are (being) loaded */
  let loadedFor = null;
  /** @type {string | null} the open song */
  let openHash = null;
  /** Bumped when the song changes, so a load that finishes late is dropped. */
  let loadToken = 0;
  /** @type {Map<Track, Waveform>} */
  const waves = new Map();
  /** @type {Map<Track, StemRow>} */
  const rows = new Map();
  let seekDragging = false;
  /** @type {Float32Array<ArrayBuffer>} */
  const scratch = new Float32Array(2048);
  let rafPending = false;
  /** The transport's own listeners, released by destroy(). */
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

  const practice = new PracticeControls(el, player, { say, changed: () => { scheduleFrame(); syncMix(); } });
  const downloads = new SongDownloads(el, say, () => syncMix());
  const keys = playerKeys(el, player);
  const urlMix = new UrlMix({
    mix: currentMix,
    apply: applyMix,
    written: (hash, mix) => downloads.pointMix(hash, mixGains(mix, order.filter((t) => player.stems.has(t)))),
  });

  /** Drops a stem's row, waveform and sound. @param {Track} track */
  function dropStem(track) {
    player.removeStem(track);
    waves.get(track)?.destroy();
    waves.delete(track);
    rows.get(track)?.destroy();
    rows.delete(track);
  }

  /** @param {string} hash @param {Track} track @param {StemFile | null} file */
  function makeStemRow(hash, track, file) {
    const label = labelOf(track);
    const row = new StemRow(el.stemRow, track, STEM_COLORS[track], {
      volume: (v) => setStemVolume(track, v),
      mute: (on) => player.setMuted(track, on),
      solo: (on) => player.setSoloed(track, on),
      duration: () => player.duration,
      drag: (selection) => {
        practice.dragging = selection;
        scheduleFrame();
      },
      select: (a, b) => practice.setLoop(a, b, true),
      seek: (t) => player.seek(t),
      say,
      remove: async () => {
        const failure = await removeOnServer(() => deleteStem(hash, track));
        if (failure) {
          say(`Couldn’t delete the ${label} stem: ${failure}`);
          return;
        }
        dropStem(track);
        announce(`${label} stem deleted`);
        if (rows.size === 0) {
          setState('empty');
          say('No stems are left for this song.');
        }
        updateTransport();
      },
    });
    row.setFile(file, downloads.songName);
    rows.set(track, row);
    return row;
  }

  /** Every row and waveform goes (a new song, or the song closed). */
  function dropRows() {
    for (const w of waves.values()) w.destroy();
    waves.clear();
    for (const r of rows.values()) r.destroy();
    rows.clear();
    el.stems.replaceChildren();
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
    // the stems the song will have (`streams`; instrumental is summed from the pieces' parts), else the pieces' own
    const tracks = order.filter((t) => (streamed.length > 0 ? streamed.includes(t) : /** @type {readonly string[]} */ (live.stems).includes(t)));
    const listed = live.pieceEnds[live.pieceEnds.length - 1] ?? 0;
    liveFrames = Math.max(listed, job.totalFrames ?? Math.round((job.audioSec ?? 0) * LIVE_RATE), 1);
    el.player.hidden = false;
    el.player.dataset.live = 'true';
    dropRows();
    livePeaks.clear();
    player.startLive(tracks, liveFrames, LIVE_RATE);
    setState('loading');
    say('Fetching the part that is separated already…');
    for (const t of tracks) {
      const row = makeStemRow(job.hash, t, null);
      row.row.dataset.live = 'true';
      el.stems.append(row.row);
      const peaks = new Float32Array(COLUMNS);
      livePeaks.set(t, peaks);
      waves.set(t, new Waveform(row.canvas, peaks, STEM_COLORS[t], liveFrames / LIVE_RATE));
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
            row.row.dataset.loaded = 'true';
            row.enable(true);
          }
          setState('ready');
          say('');
          announce(`The first ${Math.round(piece.end / LIVE_RATE)} seconds are ready. Press Play to listen while the rest is separated.`);
          urlMix.apply(openHash, order);
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
    const files = stemFiles(job, order, downloads.formats).filter((f) => rows.has(f.stem));
    const results = await Promise.allSettled(files.map(async ({ stem, url }) => /** @type {[Track, AudioBuffer]} */ ([stem, await player.decode(await fetchBinary(url))])));
    if (token !== loadToken) return;
    loader?.stop();
    loader = null;
    liveFor = null;
    /** @type {Map<Track, AudioBuffer>} */
    const buffers = new Map();
    for (const r of results) if (r.status === 'fulfilled') buffers.set(r.value[0], r.value[1]);
    // A stem the job no longer lists (deleted meanwhile) goes; one that failed to load keeps its pieces.
    for (const t of [...rows.keys()]) if (!files.some((f) => f.stem === t)) dropStem(t);
    player.finish(buffers);
    livePeaks.clear();
    el.player.dataset.live = 'false';
    for (const file of files) {
      const row = rows.get(file.stem);
      const buffer = buffers.get(file.stem);
      if (!row) continue;
      row.row.dataset.live = 'false';
      row.setFile(file, downloads.songName);
      if (!buffer) {
        // it keeps its pieces if it had any
        if (row.row.dataset.loaded !== 'true') row.row.dataset.loaded = 'error';
        continue;
      }
      row.row.dataset.loaded = 'true';
      const peaks = computePeaks(buffer);
      waves.get(file.stem)?.update(peaks, buffer.duration);
      row.markSilence(peaks);
      row.enable(true);
    }
    const failed = files.filter((f) => !buffers.has(f.stem));
    // No piece had arrived yet (the song was done before its first piece was fetched, and the
    // pieces go at done): the player leaves 'loading' here, with the finished stems.
    const wasLoading = el.player.dataset.state === 'loading';
    if (wasLoading) setState(buffers.size > 0 ? 'ready' : files.length > 0 ? 'error' : 'empty');
    if (wasLoading && buffers.size > 0) urlMix.apply(openHash, order);
    if (wasLoading && buffers.size === 0) {
      say(files.length > 0 ? `Couldn’t load the stems: ${messageOf(results.find((r) => r.status === 'rejected')?.reason)}` : 'No stems are left for this song. Delete it, or upload it again to separate it anew.');
    } else say(failed.length ? `Couldn’t load the finished ${failed.map((f) => f.stem).join(', ')}: the separated part keeps playing.` : '');
    downloads.follow(job, order);
    announce('Separation done: the finished stems are playing now.');
    updateTransport();
    scheduleFrame();
    syncMix();
  }

  /** @param {JobView} job */
  async function loadStems(job) {
    if (loadedFor === job.hash) {
      // the same song again (a run for another format ended): its links follow the files it now has
      for (const file of stemFiles(job, order, downloads.formats)) rows.get(file.stem)?.setFile(file, downloads.songName);
      return;
    }
    loadedFor = job.hash;
    if (liveFor === job.hash) {
      await finishLive(job);
      return;
    }
    const token = ++loadToken;
    const files = stemFiles(job, order, downloads.formats);
    downloads.follow(job, order);
    el.player.hidden = false;
    dropRows();
    player.clear();
    if (files.length === 0) {
      setState('empty');
      say('No stems are left for this song. Delete it, or upload it again to separate it anew.');
      updateTransport();
      return;
    }
    setState('loading');
    say(`Loading ${files.length} stems…`);
    for (const file of files) el.stems.append(makeStemRow(job.hash, file.stem, file).row);
    updateTransport();
    let loaded = 0;
    const results = await Promise.allSettled(files.map(async ({ stem: t, url }) => {
      const buffer = await player.decode(await fetchBinary(url));
      if (token !== loadToken) return;
      player.addStem(t, buffer);
      const row = rows.get(t);
      if (row) {
        row.row.dataset.loaded = 'true';
        const peaks = computePeaks(buffer);
        waves.set(t, new Waveform(row.canvas, peaks, STEM_COLORS[t], buffer.duration));
        row.markSilence(peaks);
        row.enable(true);
      }
      loaded++;
      say(`Loading stems… ${loaded} of ${files.length}`);
    }));
    if (token !== loadToken) return;
    /** @type {[Track, unknown][]} */
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [/** @type {[Track, unknown]} */ ([files[i].stem, r.reason])] : []));
    for (const [t] of failed) {
      const row = rows.get(t);
      if (row) row.row.dataset.loaded = 'error';
    }
    if (failed.length === files.length) {
      setState('error');
      say(`Couldn’t load the stems: ${messageOf(failed[0][1])}`);
    } else {
      setState('ready');
      say(failed.length ? `Couldn’t load ${failed.map(([t]) => t).join(', ')}: ${messageOf(failed[0][1])}` : '');
      announce(`Stems ready: ${files.map((f) => f.stem).filter((t) => player.stems.has(t)).join(', ')}. Press Play to listen.`);
    }
    urlMix.apply(openHash, order);
    updateTransport();
    drawFrame();
    syncMix();
  }

  /** @param {Track} track @param {number} volume 0..1 */
  function setStemVolume(track, volume) {
    const v = Math.min(1, Math.max(0, volume));
    player.setVolume(track, v);
    rows.get(track)?.showVolume(v);
  }

  /** @param {Track} track @param {'mute' | 'solo'} which @param {boolean} on */
  function setToggle(track, which, on) {
    rows.get(track)?.showToggle(which, on);
    if (which === 'mute') player.setMuted(track, on);
    else player.setSoloed(track, on);
  }

  /** The mixer's state, as the URL and the mix download carry it. @returns {MixState} */
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

  /** Sets the mixer to a mix (the URL's). @param {MixState} mix */
  function applyMix(mix) {
    for (const t of player.stems.keys()) {
      setStemVolume(t, mix.volumes[t] ?? 1);
      setToggle(t, 'mute', mix.mutes.includes(t));
      setToggle(t, 'solo', mix.solos.includes(t));
    }
    practice.setMaster(mix.master);
    if (mix.loop) practice.setLoop(mix.loop.a, mix.loop.b, true);
    if (mix.tempo !== 1) void practice.setTempo(mix.tempo);
    if (mix.pitch !== 0) void practice.setPitch(mix.pitch);
  }

  /** The URL and the mix link follow the mixer, once changes settle. */
  function syncMix() {
    urlMix.schedule(openHash, order, () => player.stems.size > 0);
  }

  function clear() {
    loadedFor = null;
    liveFor = null;
    loader?.stop();
    loader = null;
    livePeaks.clear();
    el.player.dataset.live = 'false';
    urlMix.reset();
    loadToken++;
    player.clear();
    practice.reset();
    dropRows();
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
      row.row.dataset.audible = String(player.isAudible(stem));
      row.row.dataset.gain = stem.target.toFixed(2);
    }
  }

  function drawFrame() {
    player.tick();
    const t = player.currentTime;
    el.timeNow.textContent = formatTime(t);
    if (!seekDragging) el.seek.value = String(t);
    el.seek.setAttribute('aria-valuetext', `${spokenTime(t)} of ${spokenTime(player.duration)}${player.complete ? '' : `, ${spokenTime(player.ready)} separated so far`}`);
    const loop = practice.shownLoop();
    for (const wave of waves.values()) wave.draw(t, player.duration, loop, player.ready);
    for (const [name, row] of rows) {
      const stem = player.stems.get(name);
      if (stem) row.showLevel(player.level(stem, scratch) * (stem.target > 0 ? 1 : 0));
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
  el.play.addEventListener('click', () => {
    if (player.playing) player.pause();
    else void player.play();
  }, { signal });
  el.seek.addEventListener('pointerdown', () => { seekDragging = true; }, { signal });
  el.seek.addEventListener('pointerup', () => { seekDragging = false; }, { signal });
  el.seek.addEventListener('input', () => player.seek(Number(el.seek.value)), { signal });
  window.addEventListener('resize', scheduleFrame, { signal });
  exposeForTests(player);

  offs.push(bus.on('info', (info) => {
    order = info.stems;
    downloads.setFormats(info.formats, info.defaultFormat);
  }));
  /** @param {string} name */
  function nameDownloads(name) {
    downloads.rename(name);
    for (const row of rows.values()) row.rename(name);
    syncMix();
  }
  offs.push(bus.on('opened', ({ hash, name }) => {
    openHash = hash;
    downloads.open(hash, name);
    nameDownloads(name);
  }));
  offs.push(bus.on('named', ({ hash, name }) => {
    if (hash === openHash) nameDownloads(name);
  }));
  offs.push(bus.on('job', (job) => {
    if (job.hash !== openHash) return;
    // Finished files play whatever the job is doing: a run for another format leaves them in place.
    const finished = job.state === 'done' || (liveFor !== job.hash && stemFiles(job, order, downloads.formats).length > 0);
    if (finished) void loadStems(job);
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
      for (const view of [practice, downloads, keys, urlMix]) view.destroy();
      subscriptions.abort();
      for (const off of offs) off();
      offs.length = 0;
      if (Object.getOwnPropertyDescriptor(window, 'msaasPlayer')) Reflect.deleteProperty(window, 'msaasPlayer');
      void player.ctx?.close();
    },
  };
}
