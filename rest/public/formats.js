// @ts-check
// The output formats as the server describes them (`GET /apiv1/info` › formats, from FORMAT_INFO in
// common/src/formats.ts): the page keeps no list of its own. Fills the format pickers and tells,
// for each stem of a song, which file it links and what that file is.

/** @typedef {import('./api.js').JobView} JobView */
/** @typedef {import('./api.js').Stem} Stem */
/** @typedef {import('./api.js').OutputFormat} OutputFormat */
/** @typedef {import('./api.js').OutputFormatView} OutputFormatView */

/**
 * @typedef {object} StemFile one stem of a song and the file it links
 * @property {Stem} stem
 * @property {string} url
 * @property {OutputFormatView} format what the file is (its extension and labels)
 */

/**
 * Replaces a <select>'s options with the formats, keeping its choice when it is still offered.
 * @param {HTMLSelectElement} select
 * @param {readonly OutputFormatView[]} formats
 * @param {(f: OutputFormatView) => string} label
 * @param {string} [selected] the option to choose (default: the one chosen, else the first)
 */
export function fillFormatSelect(select, formats, label, selected) {
  const want = selected ?? select.value;
  select.replaceChildren(...formats.map((f) => new Option(label(f), f.name)));
  if (formats.some((f) => f.name === want)) select.value = want;
}

/**
 * Each stem the song has, in `order`, with the file it links: its first format (the job's
 * `formats` order) that holds the stem. A stem no known format holds is left out.
 * @param {Pick<JobView, 'formats' | 'files'>} job
 * @param {readonly Stem[]} order
 * @param {readonly OutputFormatView[]} formats
 * @returns {StemFile[]}
 */
export function stemFiles(job, order, formats) {
  /** @type {StemFile[]} */
  const out = [];
  for (const stem of order) {
    for (const name of job.formats) {
      const url = job.files[name]?.[stem];
      const format = formats.find((f) => f.name === name);
      if (url && format) {
        out.push({ stem, url, format });
        break;
      }
    }
  }
  return out;
}

/**
 * The format a link's file is, told by its extension (a stem link the job gave before the formats
 * were known, or a URL from elsewhere).
 * @param {string} url @param {readonly OutputFormatView[]} formats
 * @returns {OutputFormatView | undefined}
 */
export function formatOfUrl(url, formats) {
  const ext = /\.([a-z0-9]+)(?:[?#]|$)/.exec(url)?.[1];
  return formats.find((f) => f.ext === ext);
}
