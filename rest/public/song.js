// @ts-check
// The song card: title and hash, the job's live state (queue position, progress, failure), the
// URL's `#<hash>`, and "Delete song". The player inside the card is the mixer's (mixer.js).
// Listens for `open`/`submitted`/`deleted`; says `opened`, `closed`, `job` and `gone`.
import { deleteSong, removeOnServer } from './api.js';
import { isTerminal, watchJob } from './jobwatch.js';
import { ProgressClock, clock, recordFinished, roughly, songSeconds } from './progress.js';
import { findRecent } from './recent.js';
import { announce, byId, confirmTwice, messageOf, showBadge } from './ui.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').SubmitResult} SubmitResult */
/** @typedef {import('./page-bus.js').Bus} Bus */

/** What the header adds after the hash for each submit result. @type {Record<SubmitResult, string>} */
const RESULT_NOTES = {
  enqueued: '',
  queued: 'already in the queue',
  done: 'separated before — no new work needed',
};

/** @param {string} hash */
const shortHash = (hash) => `${hash.slice(0, 10)}…`;

/**
 * What a finished song holds, in words: the stems it has ("the vocals and instrumental stems are
 * ready"), never a number it may not have.
 * @param {JobView} job
 */
function stemsReady(job) {
  const names = Object.keys(job.stems);
  if (names.length === 0) return 'no stems are left';
  const list = names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
  return `the ${list} ${names.length === 1 ? 'stem is' : 'stems are'} ready`;
}

/** `1:05` for a song position. @param {number} sec */
const at = (sec) => clock(sec * 1000);

/**
 * @param {JobView} job
 * @param {number | null} [progress] the bar's value (null: no report from the worker yet)
 */
function jobSentence(job, progress = job.progress) {
  switch (job.state) {
    case 'queued':
      if (job.position === null || job.position === undefined) return 'Waiting in the queue…';
      if (job.position === 0) return 'Next in line — waiting for a worker to be free.';
      return `Waiting in the queue — ${job.position} ${job.position === 1 ? 'song' : 'songs'} ahead.`;
    case 'processing': {
      const attempt = job.attempts > 1 ? ` (attempt ${job.attempts})` : '';
      if (progress === null) return `Separating — a worker has started; waiting for its first report…${attempt}`;
      const song = songSeconds(job);
      const ready = job.readySec > 0 && song ? ` · ${at(job.readySec)} of ${at(song)} ready to play` : '';
      return `Separating… ${Math.round(progress * 100)}%${attempt}${ready}`;
    }
    case 'done':
      return `Done — ${stemsReady(job)}.`;
    case 'failed':
      return `Separation failed: ${job.error || 'the worker gave no reason'}.`;
    default:
      return `State: ${/** @type {{ state: string }} */ (job).state}`;
  }
}

/**
 * @param {Bus} bus
 * @returns {{ destroy: () => void }} destroy: stops following the job and releases its listeners
 */
export function setupSong(bus) {
  const el = byId({
    main: HTMLElement, song: HTMLElement, songTitle: HTMLElement, songHash: HTMLElement, songNote: HTMLElement,
    jobBadge: HTMLElement, job: HTMLElement, jobProgress: HTMLProgressElement, jobText: HTMLElement,
    jobEta: HTMLElement, deleteSong: HTMLButtonElement, notify: HTMLButtonElement,
  });
  /** Whether this browser may still be asked for notifications. */
  const canAsk = () => typeof Notification === 'function' && Notification.permission === 'default';
  /** Listeners outside the song card's own content, released by destroy(). */
  const subscriptions = new AbortController();
  const { signal } = subscriptions;
  /** @type {(() => void)[]} */
  const offs = [];
  el.notify.addEventListener('click', async () => {
    if (typeof Notification !== 'function') return;
    const answer = await Notification.requestPermission();
    el.notify.hidden = true;
    announce(answer === 'granted' ? 'You’ll get a notification when the stems are ready.' : 'No notification, then: the tab’s title will say when the stems are ready.');
  }, { signal });
  const pageTitle = document.title;
  const progressClock = new ProgressClock();
  let ticker = 0;
  /** Whether the title shows a name the page made up (no name known yet). */
  let placeholderName = false;
  /**
   * @type {{
   *   hash: string | null,
   *   name: string,
   *   job: JobView | null,
   *   watcher: { stop: () => void } | null,
   *   lastAnnounced: string,
   * }}
   */
  const state = { hash: null, name: '', job: null, watcher: null, lastAnnounced: '' };

  /** The progress line, elapsed time and time left, between the worker's reports too. */
  function renderClock() {
    const job = state.job;
    if (!job) return;
    const p = progressClock.progress();
    el.jobText.textContent = jobSentence(job, job.state === 'processing' ? p : job.progress);
    if (job.state === 'processing') {
      // No report yet: an indeterminate bar rather than a made-up percentage.
      if (p === null) el.jobProgress.removeAttribute('value');
      else el.jobProgress.value = p;
      el.jobProgress.dataset.reported = String(job.progress);
      el.jobProgress.dataset.readySec = String(job.readySec ?? 0);
      const left = progressClock.remainingMs();
      el.jobEta.textContent = `Elapsed ${clock(progressClock.elapsedMs())}${left === null ? '' : ` · ${roughly(left)} left`}`;
    } else if (job.state === 'queued') {
      const left = progressClock.remainingMs();
      el.jobEta.textContent = left === null ? '' : `Ready in ${roughly(left)}`;
    } else {
      el.jobEta.textContent = '';
    }
    if (document.hidden && (job.state === 'processing' || job.state === 'queued')) {
      document.title = `${job.state === 'queued' ? 'Queued' : p === null ? 'Starting' : `${Math.round(p * 100)}%`} · ${state.name} — MSaaS`;
    }
  }

  /** @param {JobView} job */
  function renderJob(job) {
    const before = state.job?.hash === job.hash ? state.job.state : null;
    state.job = job;
    progressClock.update(job);
    if (job.filename && placeholderName) {
      placeholderName = false;
      state.name = job.filename;
      el.songTitle.textContent = state.name;
      bus.emit('named', { hash: job.hash, name: state.name });
    }
    el.song.dataset.state = job.state;
    el.job.dataset.state = job.state;
    showBadge(el.jobBadge, job.state);
    if (job.state === 'queued') el.jobProgress.removeAttribute('value'); // indeterminate
    else if (job.state === 'done') el.jobProgress.value = 1;
    else if (job.state === 'failed') el.jobProgress.value = progressClock.shown;
    renderClock();
    window.clearInterval(ticker);
    if (job.state === 'processing' || job.state === 'queued') ticker = window.setInterval(renderClock, 250);
    el.job.hidden = job.state === 'done';
    el.notify.hidden = !(canAsk() && (job.state === 'queued' || job.state === 'processing'));
    if (job.state === 'done' && before && before !== 'done') {
      recordFinished(job);
      finishedInBackground(job);
    }

    // Announce state changes and every quarter of progress, not every chunk.
    const shown = job.state === 'processing' ? progressClock.progress() : job.progress;
    const bucket = job.state === 'processing' ? `processing-${shown === null ? 'start' : Math.floor(shown * 4)}` : `${job.state}-${job.position}`;
    if (bucket !== state.lastAnnounced) {
      state.lastAnnounced = bucket;
      announce(jobSentence(job, shown));
    }
    bus.emit('job', job);
  }

  /**
   * A song that finishes while the tab is in the background says so in the tab's title (until
   * the tab is seen again) and, if the user allowed it, with a notification.
   * @param {JobView} job
   */
  function finishedInBackground(job) {
    if (!document.hidden) {
      document.title = pageTitle;
      return;
    }
    document.title = `✓ ${state.name} is ready — MSaaS`;
    if (typeof Notification === 'function' && Notification.permission === 'granted') {
      try {
        const n = new Notification('Stems ready', { body: `${state.name}: ${stemsReady(job)} to play.`, tag: job.hash });
        n.addEventListener('click', () => window.focus());
      } catch {
        /* notifications unavailable here */
      }
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) document.title = pageTitle;
  }, { signal });

  /** @param {string} hash */
  function showGone(hash) {
    bus.emit('gone', { hash });
    el.song.dataset.state = 'gone';
    showBadge(el.jobBadge, 'gone');
    el.job.hidden = false;
    el.jobProgress.value = 0;
    el.jobText.textContent = 'The server no longer has this song — it was deleted or expired. Upload it again to separate it.';
  }

  /**
   * Shows a song: its job progress now, its player when done.
   * @param {string} hash
   * @param {{ name?: string, job?: JobView, result?: SubmitResult }} [opts]
   */
  function openSong(hash, opts = {}) {
    if (state.hash !== hash) closeSong();
    state.hash = hash;
    const known = opts.name ?? findRecent(hash)?.name;
    placeholderName = !known;
    state.name = known ?? `Song ${shortHash(hash)}`;
    state.lastAnnounced = '';
    el.song.hidden = false;
    el.main.dataset.songOpen = 'true';
    el.songTitle.textContent = state.name;
    el.songHash.textContent = shortHash(hash);
    el.songHash.title = `Song hash (SHA-224 of the file): ${hash}`;
    const note = opts.result ? RESULT_NOTES[opts.result] ?? '' : '';
    el.songNote.textContent = note ? ` · ${note}` : '';
    // Keep a mix the URL carries (`#<hash>?…`, see mixstate.js) when it is this song's.
    if (!location.hash.startsWith(`#${hash}`)) history.replaceState(null, '', `#${hash}`);
    bus.emit('opened', { hash, name: state.name });

    if (opts.job) renderJob(opts.job);
    else if (!state.job) {
      el.song.dataset.state = 'loading';
      el.jobBadge.dataset.state = 'unknown';
      el.jobBadge.textContent = 'Checking…';
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
          if (gone) showGone(hash);
          else el.jobText.textContent = `${messageOf(err)} Retrying…`;
        },
      });
    }
  }

  function closeSong() {
    const hash = state.hash;
    window.clearInterval(ticker);
    el.jobEta.textContent = '';
    state.watcher?.stop();
    state.watcher = null;
    state.hash = null;
    state.job = null;
    el.song.hidden = true;
    el.song.dataset.state = 'empty';
    el.main.dataset.songOpen = 'false';
    bus.emit('closed', { hash });
  }

  confirmTwice(el.deleteSong, async () => {
    const hash = state.hash;
    if (!hash) return;
    const failure = await removeOnServer(() => deleteSong(hash));
    if (failure) {
      el.jobText.textContent = `Couldn’t delete the song: ${failure}`;
      el.job.hidden = false;
      return;
    }
    bus.emit('deleted', { hash, name: state.name, from: 'song' });
    announce('Song deleted');
  });

  offs.push(bus.on('open', ({ hash, name, reveal }) => {
    openSong(hash, { name });
    if (reveal) el.song.scrollIntoView({ behavior: 'smooth', block: 'start' });
  }));
  offs.push(bus.on('submitted', ({ name, response }) => {
    openSong(response.hash, { name, job: response.job ?? undefined, result: response.result });
  }));
  offs.push(bus.on('deleted', ({ hash }) => {
    if (hash !== state.hash) return;
    closeSong();
    history.replaceState(null, '', location.pathname + location.search);
  }));

  return {
    destroy() {
      window.clearInterval(ticker);
      state.watcher?.stop();
      state.watcher = null;
      subscriptions.abort();
      for (const off of offs) off();
      offs.length = 0;
    },
  };
}
