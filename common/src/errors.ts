/**
 * Every error code the HTTP API answers, with its status and meaning: one table that rest's
 * handlers throw by (rest/src/errors.ts `apiError`), the API document lists per route
 * (rest/src/api-document.ts) and clients match on. A 4xx/5xx body is always `{error, detail}`:
 * `error` one of these codes, `detail` a sentence about this request.
 *
 * A code has one status; the few with a second (`also`) are the same condition seen from another
 * place (a mix refused for the client, 429, or for the whole replica, 503). Codes the lab's clients
 * match on keep their names; the ones that named one mistake twice were merged (a bad `format` is
 * `bad_format` on every route; `bad_*` throughout, no `invalid_*`).
 */
export interface ErrorEntry {
  status: number;
  /** Other statuses the same condition answers with, and when. */
  also?: readonly number[];
  meaning: string;
}

export const API_ERRORS = {
  // The request's shape
  bad_request: { status: 400, meaning: 'The request does not have the shape the route takes (e.g. a body that is not a JSON object, a member of the wrong type, or a body whose size does not match its Content-Length).' },
  unknown_field: { status: 400, meaning: 'A query parameter or body field the route does not know (a typo would otherwise be ignored); the detail names it and the known ones.' },
  bad_json: { status: 400, meaning: 'The body is not valid JSON.' },
  bad_multipart: { status: 400, meaning: 'The multipart body is malformed, or its file is in another field than `file`.' },
  aborted: { status: 400, meaning: 'The client stopped sending the request before its end.' },
  // Path and query values
  bad_hash: { status: 400, meaning: 'The `:songhash` is not 56 lowercase hexadecimal characters (the SHA-224 of the uploaded bytes).' },
  bad_track: { status: 400, meaning: 'The `:track` / `:file` is not a stem name (drums, bass, other, vocals, instrumental; the lab\'s `base` is bass) with an optional known extension.' },
  bad_seq: { status: 400, meaning: 'The piece number is not 0 to 99999.' },
  bad_format: { status: 400, meaning: 'The output `format` is not one of the formats `/apiv1/info` lists in `outputFormats`.' },
  bad_stems: { status: 400, meaning: 'The `stems` are not one or more of the stems `/apiv1/info` lists.' },
  bad_gain: { status: 400, meaning: 'A mix gain is not a number from 0 to 2.' },
  bad_limit: { status: 400, meaning: 'The library\'s `limit` is not a whole number from 1 to 100.' },
  bad_cursor: { status: 400, meaning: 'The library\'s `cursor` is not the `next` value of a previous page.' },
  // The submission
  missing_file: { status: 400, meaning: 'A multipart submission without a file in the field `file`.' },
  bad_base64: { status: 400, meaning: 'The JSON submission\'s `mp3` is not valid base64.' },
  bad_callback: { status: 400, meaning: 'The callback is not a JSON object with an http(s) `url` and at most 4 KiB of `data`.' },
  bad_model: { status: 400, meaning: 'The `model` is not one `/apiv1/info` names.' },
  empty: { status: 400, meaning: 'The uploaded file is empty.' },
  unsupported_format: { status: 400, meaning: 'The bytes are not audio of a format `/apiv1/info` lists in `inputFormats`; the detail says what they look like.' },
  not_mp3: { status: 400, meaning: 'Bytes that looked like an MP3 hold no MPEG audio frames.' },
  corrupt: { status: 400, meaning: 'The audio\'s header is broken or truncated, or of a codec its container does not take here.' },
  too_long: { status: 400, meaning: 'The song is longer than MAX_DURATION_SEC (read from its header before anything is stored).' },
  // Direct uploads, URL submits, idempotent submits (issue 24)
  bad_url: { status: 400, meaning: 'The submitted `url` is not an http(s) URL the service may fetch: a private, loopback or reserved address (also after a redirect or at connect time), a port outside URL_FETCH_ALLOWED_PORTS, or a host that does not resolve within DNS_TIMEOUT_MS.' },
  url_fetch_failed: { status: 422, meaning: 'The submitted `url` could not be fetched: the server answered no file (a non-2xx status, too many redirects), broke the connection, or did not deliver it within URL_FETCH_TIMEOUT_SEC.' },
  upload_missing: { status: 409, meaning: 'The direct upload was submitted before anything was PUT to its URL.' },
  upload_used: { status: 409, meaning: 'The direct upload was submitted already; each upload is submitted once.' },
  upload_expired: { status: 410, meaning: 'The direct upload\'s URL expired (DIRECT_UPLOAD_EXPIRY_SEC) before it was submitted; its file is removed.' },
  bad_idempotency_key: { status: 400, meaning: 'The `Idempotency-Key` header is not 1 to 255 visible ASCII characters.' },
  idempotency_key_reused: { status: 422, meaning: 'The `Idempotency-Key` was used within IDEMPOTENCY_TTL_SEC for another request (another body, file, upload or URL).' },
  idempotency_in_progress: { status: 409, meaning: 'A request with the same `Idempotency-Key` is still being answered; retry after Retry-After to get its answer.' },
  // Access
  unauthorized: { status: 401, meaning: 'API keys are on and the request carries none, or an unknown one (`Authorization: Bearer <key>` or `X-API-Key`).' },
  cross_site: { status: 403, meaning: 'A state-changing request from a web page on another site without `X-Requested-With` or a JSON body (cross-site request forgery guard).' },
  // Absent things
  not_found: { status: 404, meaning: 'No such route, or no such song, stem, piece, file or direct upload for this caller (another tenant\'s song answers exactly like one nobody submitted).' },
  not_ready: { status: 404, also: [503], meaning: 'The file is not made yet: the song is queued or processing (404). From `/readyz` (503): Redis or the object store is not reachable.' },
  job_failed: { status: 404, meaning: 'The separation of the song failed; the detail gives its error.' },
  // Sizes and ranges
  payload_too_large: { status: 413, meaning: 'The upload is over MAX_UPLOAD_MB, or a route that takes no body was sent one.' },
  unsupported_encoding: { status: 415, meaning: 'The body has a Content-Encoding (compressed) or a charset rest does not read.' },
  range_not_satisfiable: { status: 416, meaning: 'The `Range` asked for is outside the file.' },
  // Limits
  rate_limited: { status: 429, meaning: 'Too many requests (RATE_LIMIT_PER_MIN, SUBMIT_RATE_LIMIT_PER_MIN) or failed key attempts (AUTH_FAIL_LIMIT_PER_MIN) this minute; see Retry-After.' },
  quota_exceeded: { status: 429, meaning: 'The tenant\'s quota (MAX_ACTIVE_JOBS_PER_KEY songs at once, MAX_AUDIO_MINUTES_PER_DAY) would be passed; see Retry-After.' },
  too_many_streams: { status: 429, meaning: 'Too many event or live streams open for this client (STREAMS_PER_CLIENT) or this replica (STREAMS_PER_PROCESS); see Retry-After.' },
  too_many_mixes: { status: 429, also: [503], meaning: 'Too many custom mixes encoding for this client (MIXES_PER_CLIENT, 429) or this replica (MAX_CONCURRENT_MIXES, 503); see Retry-After.' },
  too_many_uploads: { status: 503, meaning: 'This replica is receiving MAX_CONCURRENT_UPLOADS uploads already; see Retry-After.' },
  // The service
  unavailable: { status: 503, meaning: 'Redis or the object store is unreachable or failing; retry later (Retry-After).' },
  storage_full: { status: 503, meaning: 'Redis is out of memory: nothing new can be recorded until finished songs expire; retry later (Retry-After).' },
  internal: { status: 500, meaning: 'A fault of the service (logged with its cause; never a client\'s mistake).' },
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof API_ERRORS;
export const ERROR_CODES = Object.keys(API_ERRORS) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(API_ERRORS, value);
}

/** The statuses a code may answer with: its own first, then its `also`. */
export function statusesOf(code: ErrorCode): readonly number[] {
  const entry: ErrorEntry = API_ERRORS[code];
  return [entry.status, ...(entry.also ?? [])];
}
