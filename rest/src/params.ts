import { isSonghash, isTrack, type Track } from '@msaas/common';
import { badRequest } from './errors.ts';

/** `:songhash` must be 56 lowercase hex characters: never a path into storage. */
export function songhashParam(value: unknown): string {
  const s = typeof value === 'string' ? value : '';
  if (!isSonghash(s)) throw badRequest('bad_hash', 'songhash must be 56 lowercase hexadecimal characters (SHA-224 of the uploaded song)');
  return s;
}

/** `:track` is drums|bass|other|vocals with or without `.mp3`; the lab's `base` is bass. */
export function trackParam(value: unknown): Track {
  const raw = (typeof value === 'string' ? value : '').replace(/\.mp3$/, '');
  const name = raw === 'base' ? 'bass' : raw;
  if (!isTrack(name)) throw badRequest('bad_track', 'track must be one of drums, bass, other, vocals (optionally with .mp3)');
  return name;
}
