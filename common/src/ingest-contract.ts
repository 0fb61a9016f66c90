/**
 * Wire shapes of the ways a song gets in besides the lab's base64 body and a multipart file (issue
 * 24): a direct upload to the object store (`POST /apiv1/uploads`, then `{"upload": id}`), a URL the
 * service fetches (`{"url": …}`), and the `Idempotency-Key` header of both submits. zod schemas, so
 * the API document can be generated from them.
 */
import { z } from 'zod';
import { SUBMIT_JSON_OPTIONS } from './submit-fields.ts';

/** `Idempotency-Key`: 1 to 255 visible ASCII characters, scoped per tenant, kept IDEMPOTENCY_TTL_SEC (24 h). */
export const IdempotencyKeySchema = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'Idempotency-Key must be 1 to 255 visible ASCII characters')
  .meta({ description: 'a repeat with the same key and the same request within 24 h answers the first response again (header Idempotent-Replayed: true); the same key with another request is 422 idempotency_key_reused' });

/** The optional fields, as the lab's JSON submit takes them (submit-fields.ts). */
const submitOptions = SUBMIT_JSON_OPTIONS;

/** `POST /apiv1/separate {"upload": id}`: a direct upload, PUT to its URL before. */
export const SeparateUploadJsonSchema = z
  .object({
    upload: z.string().min(1).max(64).meta({ description: 'the id POST /apiv1/uploads answered; each upload is submitted once' }),
    ...submitOptions,
  })
  .strict()
  .meta({ id: 'SeparateUploadJson' });

/** `POST /apiv1/separate {"url": "https://…"}`: a file the service fetches before answering. */
export const SeparateUrlJsonSchema = z
  .object({
    url: z.string().min(1).max(2048).meta({ description: 'an http(s) URL of the audio file: public addresses and URL_FETCH_ALLOWED_PORTS only (every redirect too), at most MAX_UPLOAD_MB, within URL_FETCH_TIMEOUT_SEC' }),
    ...submitOptions,
  })
  .strict()
  .meta({ id: 'SeparateUrlJson' });

/** `POST /apiv1/uploads` body (optional): the file's name, shown in the library. */
export const CreateUploadRequestSchema = z
  .object({ filename: z.string().max(200).optional().meta({ description: "the file's name for the library (default none)" }) })
  .strict()
  .meta({ id: 'CreateUploadRequest' });

/** `POST /apiv1/uploads` answer: where to PUT the file, until when, and how much it may hold. */
export const DirectUploadResponseSchema = z
  .object({
    id: z.string().meta({ description: 'submit it with POST /apiv1/separate {"upload": id}' }),
    url: z.string().meta({ description: 'presigned URL of the object store: send the file\'s bytes as the body' }),
    method: z.literal('PUT'),
    expiresAt: z.string().meta({ description: 'ISO 8601 time the URL stops working (DIRECT_UPLOAD_EXPIRY_SEC); an upload not submitted by then is removed' }),
    maxBytes: z.number().int().meta({ description: 'the most the file may hold (MAX_UPLOAD_MB); a larger one is refused and removed at submit' }),
    headers: z.record(z.string(), z.string()).meta({ description: 'headers to send with the PUT (none are required today)' }),
  })
  .meta({ id: 'DirectUpload' });

export type CreateUploadRequest = z.infer<typeof CreateUploadRequestSchema>;
export type DirectUploadResponse = z.infer<typeof DirectUploadResponseSchema>;
