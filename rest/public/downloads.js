// @ts-check
// The player's downloads: "Download all" (the zip), "Download this mix" (the server's mix of what is
// heard, in the format picked: it starts at the song's own) and each stem's link, named and labelled
// from the file it links. With an API key set, a plain link cannot send the X-API-Key header: the
// file is fetched with it and handed to the browser as a blob.
import { fetchBlob, getApiKey, mixUrl, zipUrl } from './api.js';
import { fillFormatSelect, stemFiles } from './formats.js';
import { baseName, messageOf } from './ui.js';

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').Stem} Stem */
/** @typedef {import('./api.js').OutputFormatView} OutputFormatView */
/** @typedef {import('./formats.js').StemFile} StemFile */

/** @param {Stem} stem */
export const labelOf = (stem) => stem[0].toUpperCase() + stem.slice(1);

/**
 * Downloads `link` with the API key when one is set (else the link downloads by itself).
 * @param {HTMLAnchorElement} link
 * @param {(msg: string) => void} onError
 * @param {AbortSignal} [signal] removes the listener
 */
export function downloadWithKey(link, onError, signal) {
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
 * Points a stem's download at its file: `<song>-vocals.flac`, "Download Vocals (FLAC)"; no file
 * yet (a song still being separated): the link waits, unnamed.
 * @param {HTMLAnchorElement} link @param {Stem} stem @param {StemFile | null} file @param {string} songName
 */
export function pointStemLink(link, stem, file, songName) {
  const label = labelOf(stem);
  link.href = file?.url ?? '';
  link.download = file ? `${baseName(songName)}-${stem}.${file.format.ext}` : '';
  const what = file ? `Download ${label} (${file.format.short})` : `Download ${label}`;
  link.setAttribute('aria-label', what);
  link.title = what;
}

/** "Download all" and "Download this mix". */
export class SongDownloads {
  /**
   * @param {{ downloadAll: HTMLAnchorElement, downloadMix: HTMLAnchorElement, mixFormat: HTMLSelectElement }} el
   * @param {(msg: string) => void} say
   * @param {() => void} changed the mix format was picked
   */
  constructor(el, say, changed) {
    this.el = el;
    /** @type {readonly OutputFormatView[]} */
    this.formats = [];
    this.songName = '';
    this.subscriptions = new AbortController();
    const { signal } = this.subscriptions;
    downloadWithKey(el.downloadAll, say, signal);
    downloadWithKey(el.downloadMix, say, signal);
    el.mixFormat.addEventListener('change', changed, { signal });
  }

  /** The formats the server offers (`/apiv1/info`). @param {readonly OutputFormatView[]} formats @param {string} fallback */
  setFormats(formats, fallback) {
    this.formats = formats;
    fillFormatSelect(this.el.mixFormat, formats, (f) => f.short, this.el.mixFormat.value || fallback);
  }

  /** @param {string} hash @param {string} name */
  open(hash, name) {
    this.el.downloadAll.href = zipUrl(hash);
    this.rename(name);
  }

  /** @param {string} name */
  rename(name) {
    this.songName = name;
    this.el.downloadAll.download = `${baseName(name)}-stems.zip`;
  }

  /**
   * The mix follows the song: the picker starts at the song's own format; with nothing to mix
   * the link is disabled, saying why.
   * @param {Pick<JobView, 'formats' | 'files'>} job @param {readonly Stem[]} order
   */
  follow(job, order) {
    const own = job.formats.find((f) => this.formats.some((o) => o.name === f));
    if (own) this.el.mixFormat.value = own;
    const none = stemFiles(job, order, this.formats).length === 0;
    this.el.downloadMix.setAttribute('aria-disabled', String(none));
    this.el.downloadMix.title = none ? 'No stems are left to mix.' : 'The stems mixed on the server as you hear them';
    if (none) this.el.downloadMix.removeAttribute('href');
  }

  /** The mix link for these gains, in the format picked. @param {string} hash @param {Record<string, number>} gains */
  pointMix(hash, gains) {
    const format = this.el.mixFormat.value;
    this.el.downloadMix.href = mixUrl(hash, gains, format);
    this.el.downloadMix.download = `${baseName(this.songName)}-mix.${this.formats.find((f) => f.name === format)?.ext ?? format}`;
  }

  destroy() {
    this.subscriptions.abort();
  }
}
