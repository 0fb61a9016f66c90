// @ts-check
// The page's entry point: upload → live job progress → four-stem player, plus the recent-songs
// list. Builds the views on one event bus, loads the server info, keeps the URL's `#<hash>` and
// the API key setting. The views (upload.js, song.js, mixer.js, recent-view.js) only talk
// through the bus (page-bus.js).
import { getApiKey, getInfo, setApiKey } from './api.js';
import { Emitter } from './page-bus.js';
import { setupMixer } from './mixer.js';
import { parseFragment } from './mixstate.js';
import { setupRecentView } from './recent-view.js';
import { setupSong } from './song.js';
import { byId, messageOf } from './ui.js';
import { setupUpload } from './upload.js';

/** @typedef {import('./page-bus.js').PageEvents} PageEvents */

/** @type {import('./page-bus.js').Bus} */
const bus = new Emitter();

// Listeners run in this order: the list records a song before the song card opens it.
const recent = setupRecentView(bus);
setupSong(bus);
setupMixer(bus);
setupUpload(bus);

/** @type {string | null} */
let openHash = null;
bus.on('opened', ({ hash }) => { openHash = hash; });
bus.on('closed', () => { openHash = null; });

const el = byId({ serverInfo: HTMLElement, apiKey: HTMLInputElement });

async function loadInfo() {
  try {
    const info = await getInfo();
    el.serverInfo.textContent = `Model: ${info.model}`;
    document.body.dataset.server = 'up';
    bus.emit('info', info);
  } catch (err) {
    document.body.dataset.server = 'down';
    bus.emit('infoFailed', { message: messageOf(err) });
  }
}

el.apiKey.value = getApiKey();
el.apiKey.addEventListener('change', () => {
  const key = el.apiKey.value.trim();
  setApiKey(key);
  bus.emit('apiKey', { key });
  void loadInfo().then(recent.refresh);
});

async function main() {
  // `#<hash>` or `#<hash>?<mix>`: the mixer reads the mix part itself once the stems are in.
  const fromUrl = parseFragment(location.hash, []).hash;
  await loadInfo();
  if (fromUrl) bus.emit('open', { hash: fromUrl });
  void recent.refresh();
  window.addEventListener('hashchange', () => {
    const h = parseFragment(location.hash, []).hash;
    if (h && h !== openHash) bus.emit('open', { hash: h });
  });
  document.body.dataset.ready = 'true';
}

void main();
