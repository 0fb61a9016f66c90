import { DEFAULT_OUTPUT_FORMAT, DEFAULT_STEMS, OUTPUT_FORMATS, STEMS, isOutputFormat, isStem, orderedStems, rerunReason, type OutputFormat, type OutputRequest, type Stem, type SubmitOutcome } from '@msaas/common';
import { badRequest } from './errors.ts';

/**
 * `format` and `stems` of a submission (JSON fields, or multipart fields as text). Both are
 * optional: the lab's requests carry neither and get the four MP3 stems. `stems` is an array of
 * names or one comma-separated string.
 */
export function parseOutputRequest(format: unknown, stems: unknown): OutputRequest {
  let f: OutputFormat = DEFAULT_OUTPUT_FORMAT;
  const given = (v: unknown): boolean => v !== undefined && v !== null && v !== '';
  const explicit = given(format) || given(stems);
  if (given(format)) {
    if (typeof format !== 'string' || !isOutputFormat(format)) {
      throw badRequest('bad_format', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
    }
    f = format;
  }
  if (!given(stems)) return { format: f, stems: [...DEFAULT_STEMS], explicit };
  const names = typeof stems === 'string' ? stems.split(',').map((s) => s.trim()) : Array.isArray(stems) ? stems : null;
  if (!names || names.length === 0 || names.length > 20 || !names.every((n): n is Stem => typeof n === 'string' && isStem(n))) {
    throw badRequest('bad_stems', `stems must name one or more of ${STEMS.join(', ')} (an array, or comma-separated)`);
  }
  return { format: f, stems: orderedStems(names), explicit };
}

/**
 * The submit reason when the output asked for changed what the submission did; undefined: the
 * lab's sentence (always for a submission that names no format or stems, e.g. the lab re-sending
 * a song whose stem it removed).
 */
export function outputReason(outcome: SubmitOutcome, want: OutputRequest): string | undefined {
  if (!want.explicit) return undefined;
  if (outcome.rerunOf) return rerunReason(outcome.rerunOf, want);
  if (outcome.extended) return `Song already queued; its run now makes the ${want.format} stems ${want.stems.join(', ')} as well`;
  if (outcome.running) {
    return `Song already being separated as ${outcome.running.formats.join(' + ')} (${outcome.running.stems.join(', ')}), which does not make the ${want.format} stems ${want.stems.join(', ')}; submit again once it is done for a new run that makes them`;
  }
  return undefined;
}
