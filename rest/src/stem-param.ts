import { EXTENSIONS, STEMS, isExtension, isStem, type Extension, type Stem } from '@msaas/common';
import { badRequest } from './errors.ts';

/**
 * `:track` of the stem routes: `<stem>` or `<stem>.<ext>` — a model stem or `instrumental`, with
 * `.mp3` (the default, as the lab's `vocals` and `vocals.mp3`), `.wav` or `.flac`. The lab's
 * `base` is bass.
 */
export function stemFileParam(value: unknown): { stem: Stem; ext: Extension } {
  const raw = typeof value === 'string' ? value : '';
  const dot = raw.lastIndexOf('.');
  const name = dot < 0 ? raw : raw.slice(0, dot);
  const ext = dot < 0 ? 'mp3' : raw.slice(dot + 1);
  const stem = name === 'base' ? 'bass' : name;
  if (!isStem(stem) || !isExtension(ext)) {
    throw badRequest('bad_track', `track must be one of ${STEMS.join(', ')}, optionally with ${EXTENSIONS.map((e) => `.${e}`).join(', ')}`);
  }
  return { stem, ext };
}
