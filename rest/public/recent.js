// @ts-check
// The user's recent songs, kept in localStorage (newest first).

/** @typedef {import('./api.js').JobState} JobState */
/** A job state, or 'gone' when the server no longer has the song, or 'unknown'. @typedef {JobState | 'gone' | 'unknown'} SongState */
/**
 * @typedef {object} RecentSong
 * @property {string} hash
 * @property {string} name file name as uploaded
 * @property {number} addedAt ms since epoch
 * @property {SongState} state
 * @property {number | null} [audioSec] the song's length, when the server said
 * @property {number | null} [durationSec] how long its separation took
 */

const STORAGE = 'msaas.recent.v1';
const MAX = 100;
const HASH_RE = /^[0-9a-f]{56}$/;

/** Whether a string is a song hash (hex SHA-224), as in the page URL's `#<hash>`. @param {string} s */
export const isSongHash = (s) => HASH_RE.test(s);

/** @returns {RecentSong[]} */
export function loadRecent() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORAGE) ?? '[]');
    if (!Array.isArray(raw)) return [];
    return raw.filter((s) => s && typeof s.hash === 'string' && isSongHash(s.hash));
  } catch {
    return [];
  }
}

/** @param {RecentSong[]} list */
function save(list) {
  try {
    localStorage.setItem(STORAGE, JSON.stringify(list.slice(0, MAX)));
  } catch {
    /* quota or disabled storage: the list just won't persist */
  }
}

/**
 * Adds a song (or moves it to the top, keeping its first name and date).
 * @param {{ hash: string, name: string, state: SongState }} song
 */
export function rememberSong(song) {
  const list = loadRecent();
  const old = list.find((s) => s.hash === song.hash);
  /** @type {RecentSong} */
  const entry = old ? { ...old, state: song.state } : { ...song, addedAt: Date.now() };
  save([entry, ...list.filter((s) => s.hash !== song.hash)]);
}

/** @param {string} hash @param {SongState} state @returns {boolean} whether anything changed */
export function updateState(hash, state) {
  const list = loadRecent();
  const entry = list.find((s) => s.hash === hash);
  if (!entry || entry.state === state) return false;
  entry.state = state;
  save(list);
  return true;
}

/**
 * Merges a page of the server's library (`GET /apiv1/jobs`, this key's songs) into the list:
 * the server's names, states and durations win; the list stays newest first.
 * @param {import('./api.js').LibrarySong[]} songs
 */
export function mergeLibrary(songs) {
  const list = loadRecent();
  for (const song of songs) {
    const at = Date.parse(song.claimedAt);
    const old = list.find((s) => s.hash === song.hash);
    /** @type {RecentSong} */
    const entry = {
      hash: song.hash,
      name: song.filename ?? old?.name ?? `Song ${song.hash.slice(0, 10)}…`,
      addedAt: Number.isFinite(at) ? at : old?.addedAt ?? Date.now(),
      state: song.state,
      audioSec: song.audioSec,
      durationSec: song.durationSec,
    };
    if (old) Object.assign(old, entry);
    else list.push(entry);
  }
  list.sort((x, y) => y.addedAt - x.addedAt);
  save(list);
}

/** Names a song the list knows by a made-up name. @param {string} hash @param {string} name */
export function renameSong(hash, name) {
  const list = loadRecent();
  const entry = list.find((s) => s.hash === hash);
  if (!entry || entry.name === name) return false;
  entry.name = name;
  save(list);
  return true;
}

/** @param {string} hash */
export function forgetSong(hash) {
  save(loadRecent().filter((s) => s.hash !== hash));
}

/** @param {string} hash @returns {RecentSong | undefined} */
export function findRecent(hash) {
  return loadRecent().find((s) => s.hash === hash);
}

/** @param {number} ms @param {number} [now] */
export function timeAgo(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  return new Date(ms).toLocaleDateString();
}
