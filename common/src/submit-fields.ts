/**
 * The optional fields of a submission (`callback`, `model`, `format`, `stems`) as zod schemas that
 * say exactly what `POST /apiv1/separate` takes: shared by every way of sending the audio (the lab's
 * base64, a direct upload, a URL: contract.ts, ingest-contract.ts) and by the multipart form, so
 * the API document describes them once (rest/test/openapi.test.ts checks route and schema agree).
 */
import { z } from 'zod';
import { STEMS } from './tracks.ts';
import { OUTPUT_FORMATS } from './formats.ts';
import { MODELS } from './api.ts';
import { MAX_CALLBACK_DATA_BYTES } from './job.ts';

export const CallbackRequestSchema = z
  .object({
    url: z
      .string()
      .max(2048)
      .regex(/^[Hh][Tt][Tt][Pp][Ss]?:\/\/[^\s/?#@]+(?:[/?#]\S*)?$/)
      .meta({ description: 'http(s) URL the worker POSTs the finished job to, without credentials (a private or loopback host is skipped, not refused, unless CALLBACK_ALLOW_PRIVATE)' }),
    data: z.unknown().optional().meta({ description: `any JSON, at most ${MAX_CALLBACK_DATA_BYTES / 1024} KiB, sent back in the callback` }),
  })
  .meta({ id: 'Callback' });

/** Empty (or null in JSON) is the default, as the route takes it. */
export const formatField = z.union([z.enum(OUTPUT_FORMATS), z.literal('')]).meta({ description: 'output format of the stems (default mp3; empty: the default)' });
export const modelField = z.enum(MODELS).meta({ description: 'the separation model (default htdemucs)' });
const stemName = `(?:${STEMS.join('|')})`;
/** One or more stem names, comma-separated (at most 20), or empty for the default. */
export const stemsText = z
  .string()
  .regex(new RegExp(`^(?:|\\s*${stemName}(?:\\s*,\\s*${stemName}){0,19}\\s*)$`))
  .meta({ description: 'comma-separated stem names (default the four model stems; empty: the default)' });

/** The optional members of every JSON submission. */
export const SUBMIT_JSON_OPTIONS = {
  callback: CallbackRequestSchema.nullable().optional(),
  model: modelField.optional(),
  format: formatField.nullable().optional(),
  stems: z
    .union([z.array(z.enum(STEMS)).min(1).max(20), stemsText])
    .nullable()
    .optional()
    .meta({ description: 'the stems to store: an array of names, or one comma-separated string (default the four model stems)' }),
};
