// @ts-check
// The "Recent songs" card: the songs remembered in this browser (recent.js), their last known
// state, Open and Delete. Keeps the states fresh from the server; marks the song that is open.
import { deleteSong, getApiKey, getJob, getLibrary, isGone, removeOnServer } from './api.js';
import { clock } from './progress.js';
import { findRecent, forgetSong, loadRecent, mergeLibrary, rememberSong, renameSong, timeAgo, updateState } from './recent.js';
import { $, announce, byId, cloneRow, confirmTwice, messageOf, showBadge, stateLabel } from './ui.js';

/** @typedef {import('./recent.js').RecentSong} RecentSong */
/** @typedef {import('./page-bus.js').Bus} Bus */

/** How often the list is re-checked while a song is still queued or separating. */
const REFRESH_MS = 10_000;

/**
 * @param {Bus} bus
 * @returns {{ refresh: () => Promise<void> }}
 */
export function setupRecentView(bus) {
  const el = byId({
    recentList: HTMLElement, recentEmpty: HTMLElement, recentRefresh: HTMLButtonElement, recentRow: HTMLTemplateElement,
    recentMore: HTMLButtonElement, recentSource: HTMLElement,
  });
  /** @type {string | null} the server library's next page (keys on) */
  let nextPage = null;
  /** @type {string | null} the song the song card shows */
  let openHash = null;

  function markCurrent() {
    for (const li of el.recentList.querySelectorAll('li')) {
      const open = $('.recent-open', HTMLButtonElement, li);
      if (li.dataset.hash === openHash) open.setAttribute('aria-current', 'true');
      else open.removeAttribute('aria-current');
    }
  }

  /** @param {RecentSong} song */
  function makeRow(song) {
    const li = cloneRow(el.recentRow);
    li.dataset.hash = song.hash;
    li.dataset.state = song.state;
    $('.recent-name', HTMLElement, li).textContent = song.name;
    const sub = $('.recent-sub', HTMLElement, li);
    const lengths = [
      song.audioSec ? `${clock(song.audioSec * 1000)} long` : '',
      song.durationSec ? `separated in ${clock(song.durationSec * 1000)}` : '',
    ].filter(Boolean);
    sub.textContent = [timeAgo(song.addedAt), ...lengths, song.hash.slice(0, 8)].join(' · ');
    showBadge($('.badge', HTMLElement, li), song.state);
    const open = $('.recent-open', HTMLButtonElement, li);
    open.setAttribute('aria-label', `Open ${song.name} (${stateLabel(song.state)})`);
    open.addEventListener('click', () => bus.emit('open', { hash: song.hash, name: song.name, reveal: true }));
    const del = $('.delete', HTMLButtonElement, li);
    const gone = song.state === 'gone';
    del.setAttribute('aria-label', gone ? `Remove ${song.name} from this list` : `Delete ${song.name} from the server`);
    del.title = gone ? 'Remove from this list' : 'Delete from the server';
    del.dataset.confirm = gone ? `Click again to remove ${song.name} from this list` : `Click again to delete ${song.name} and its stems`;
    confirmTwice(del, async () => {
      const failure = gone ? null : await removeOnServer(() => deleteSong(song.hash));
      if (failure) {
        sub.textContent = `Couldn’t delete: ${failure}`;
        return;
      }
      bus.emit('deleted', { hash: song.hash, name: song.name, from: 'recent' });
      announce(`${song.name} deleted`);
    });
    return li;
  }

  function render() {
    const list = loadRecent();
    el.recentEmpty.hidden = list.length > 0;
    el.recentRefresh.hidden = list.length === 0;
    el.recentList.replaceChildren(...list.map(makeRow));
    markCurrent();
  }

  /**
   * With an API key, the server keeps this key's songs (`GET /apiv1/jobs`): the list shows them
   * too, not only what this browser remembers. Without keys everyone shares one library, so the
   * page lists only this browser's own songs.
   * @param {string | null} [cursor] the page after the first
   */
  async function loadLibrary(cursor = null) {
    if (!getApiKey()) {
      el.recentSource.hidden = true;
      el.recentMore.hidden = true;
      return;
    }
    try {
      const page = await getLibrary({ limit: 20, cursor });
      mergeLibrary(page.songs);
      nextPage = page.next;
      el.recentSource.hidden = false;
      el.recentMore.hidden = nextPage === null;
      render();
    } catch (err) {
      el.recentSource.hidden = false;
      el.recentSource.textContent = `Couldn’t load your songs from the server: ${messageOf(err)}`;
    }
  }
  el.recentMore.addEventListener('click', () => void loadLibrary(nextPage));

  /** Asks the server for the state of every remembered song that may have changed. */
  async function refresh() {
    await loadLibrary();
    const list = loadRecent().filter((s) => s.state !== 'gone');
    let changed = false;
    await Promise.all(list.map(async (song) => {
      try {
        const job = await getJob(song.hash);
        changed = updateState(song.hash, job.state) || changed;
      } catch (err) {
        if (isGone(err)) changed = updateState(song.hash, 'gone') || changed;
      }
    }));
    if (changed) render();
  }

  el.recentRefresh.addEventListener('click', () => void refresh());
  // Keep the list honest while something is still queued or separating.
  window.setInterval(() => {
    if (loadRecent().some((s) => s.state === 'queued' || s.state === 'processing' || s.state === 'unknown')) void refresh();
  }, REFRESH_MS);

  bus.on('submitted', ({ name, response }) => {
    const state = response.job?.state ?? (response.result === 'done' ? 'done' : 'queued');
    rememberSong({ hash: response.hash, name, state });
    render();
  });
  bus.on('job', (job) => {
    // A song opened from a link (another browser, a fresh profile) joins the list under the server's name.
    if (!findRecent(job.hash)) {
      rememberSong({ hash: job.hash, name: job.filename ?? `Song ${job.hash.slice(0, 10)}…`, state: job.state });
      render();
    } else if (updateState(job.hash, job.state)) render();
  });
  bus.on('named', ({ hash, name }) => {
    if (renameSong(hash, name)) render();
  });
  bus.on('gone', ({ hash }) => {
    if (updateState(hash, 'gone')) render();
  });
  bus.on('opened', ({ hash }) => {
    openHash = hash;
    markCurrent();
  });
  bus.on('closed', () => {
    openHash = null;
    markCurrent();
  });
  bus.on('deleted', ({ hash }) => {
    forgetSong(hash);
    render();
  });

  render();
  return { refresh };
}
