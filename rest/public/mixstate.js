// @ts-check
// The mixer's state in the page URL, so a mix can be reopened and shared:
// `#<hash>?drums=0.8&mute=bass&solo=vocals&master=0.9&loop=12.5-20&tempo=0.8&pitch=-2`.
// Only what differs from the defaults is written. Pure functions; the mixer applies them.
import { isSongHash } from './recent.js';

/** @typedef {import('./api.js').Stem} Track a stem's name (the model's four and instrumental) */
/**
 * @typedef {object} MixState
 * @property {Partial<Record<Track, number>>} volumes per stem, 0..1 (absent: 1)
 * @property {Track[]} mutes
 * @property {Track[]} solos
 * @property {number} master 0..1
 * @property {{ a: number, b: number } | null} loop
 * @property {number} tempo 0.5..1.5
 * @property {number} pitch semitones, −6..6
 */

/** @returns {MixState} */
export const defaultMix = () => ({ volumes: {}, mutes: [], solos: [], master: 1, loop: null, tempo: 1, pitch: 0 });

/** @param {number} v @param {number} lo @param {number} hi */
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
/** @param {number} v */
const short = (v) => String(Math.round(v * 1000) / 1000);

/**
 * @param {string} fragment `location.hash`, with or without the leading `#`
 * @param {readonly Track[]} tracks the names a stem may have
 * @returns {{ hash: string | null, mix: MixState | null }} `mix` is null when the URL carries none
 */
export function parseFragment(fragment, tracks) {
  const text = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  const q = text.indexOf('?');
  const head = q < 0 ? text : text.slice(0, q);
  const hash = isSongHash(head) ? head : null;
  if (q < 0 || !hash) return { hash, mix: null };
  const params = new URLSearchParams(text.slice(q + 1));
  const mix = defaultMix();
  /** @param {string} name */
  const num = (name) => {
    const v = params.get(name);
    const n = v === null || v.trim() === '' ? NaN : Number(v);
    return Number.isFinite(n) ? n : null;
  };
  /** @param {string} name @returns {Track[]} */
  const list = (name) => (params.get(name) ?? '').split(',').filter((t) => /** @type {readonly string[]} */ (tracks).includes(t)).map((t) => /** @type {Track} */ (t));
  for (const t of tracks) {
    const v = num(t);
    if (v !== null) mix.volumes[t] = clamp(v, 0, 1);
  }
  mix.mutes = list('mute');
  mix.solos = list('solo');
  mix.master = clamp(num('master') ?? 1, 0, 1);
  mix.tempo = clamp(num('tempo') ?? 1, 0.5, 1.5);
  mix.pitch = Math.round(clamp(num('pitch') ?? 0, -6, 6));
  const loop = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(params.get('loop') ?? '');
  if (loop && Number(loop[2]) > Number(loop[1])) mix.loop = { a: Number(loop[1]), b: Number(loop[2]) };
  return { hash, mix };
}

/**
 * The fragment for a song and its mix (just `#<hash>` when the mix is the default).
 * @param {string} hash @param {MixState} mix @param {readonly Track[]} tracks
 */
export function formatFragment(hash, mix, tracks) {
  const params = new URLSearchParams();
  for (const t of tracks) {
    const v = mix.volumes[t];
    if (v !== undefined && Math.abs(v - 1) > 1e-6) params.set(t, short(v));
  }
  if (mix.mutes.length) params.set('mute', mix.mutes.join(','));
  if (mix.solos.length) params.set('solo', mix.solos.join(','));
  if (Math.abs(mix.master - 1) > 1e-6) params.set('master', short(mix.master));
  if (mix.loop) params.set('loop', `${short(mix.loop.a)}-${short(mix.loop.b)}`);
  if (Math.abs(mix.tempo - 1) > 1e-6) params.set('tempo', short(mix.tempo));
  if (mix.pitch) params.set('pitch', String(mix.pitch));
  const query = params.toString().replace(/%2C/g, ',');
  return `#${hash}${query ? `?${query}` : ''}`;
}

/**
 * The gain of each stem in a mix as the server renders it (`GET /apiv1/jobs/:h/mix`, gains 0..2):
 * volume × master, 0 when muted or not soloed while another stem is.
 * @param {MixState} mix @param {readonly Track[]} tracks
 * @returns {Record<string, number>}
 */
export function mixGains(mix, tracks) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const t of tracks) {
    const heard = !mix.mutes.includes(t) && (mix.solos.length === 0 || mix.solos.includes(t));
    out[t] = heard ? Math.round((mix.volumes[t] ?? 1) * mix.master * 1000) / 1000 : 0;
  }
  return out;
}
