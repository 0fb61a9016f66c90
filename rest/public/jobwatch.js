// @ts-check
// Follows one job: Server-Sent Events first, polling every second if the stream fails.
import { ApiError, eventsUrl, getJob, getApiKey, isGone } from './api.js';

/** @typedef {import('./api.js').JobView} JobView */

/** @param {string} state */
export const isTerminal = (state) => state === 'done' || state === 'failed';

/**
 * @param {string} hash
 * @param {{
 *   onJob: (job: JobView) => void,
 *   onTrouble?: (err: unknown, gone: boolean) => void,
 *   pollMs?: number,
 * }} handlers onTrouble reports a failed poll; `gone` is true when the server no longer knows the song
 * @returns {{ stop: () => void, readonly mode: 'sse' | 'poll' | 'stopped' }}
 */
export function watchJob(hash, handlers) {
  const pollMs = handlers.pollMs ?? 1000;
  /** @type {'sse' | 'poll' | 'stopped'} */
  let mode = 'poll';
  /** @type {EventSource | null} */
  let source = null;
  let timer = 0;
  let failures = 0;
  // A 'job' event arrived on the current connection since the last error (see the error handler).
  let heard = false;
  // A function, not an inline comparison: `mode` changes across awaits.
  const stopped = () => mode === 'stopped';

  const stop = () => {
    mode = 'stopped';
    source?.close();
    source = null;
    clearTimeout(timer);
  };

  /** @param {JobView} job */
  const deliver = (job) => {
    if (stopped()) return;
    // Close before the server does, so EventSource does not treat the end as an error and reconnect.
    if (isTerminal(job.state)) stop();
    handlers.onJob(job);
  };

  const poll = async () => {
    if (stopped()) return;
    try {
      deliver(await getJob(hash));
      failures = 0;
    } catch (err) {
      const gone = isGone(err);
      handlers.onTrouble?.(err, gone);
      if (gone) {
        stop();
        return;
      }
      failures++;
    }
    if (!stopped()) timer = window.setTimeout(poll, pollMs * Math.min(5, 1 + failures));
  };

  const startPolling = () => {
    source?.close();
    source = null;
    mode = 'poll';
    void poll();
  };

  // EventSource cannot send an X-API-Key header, so with a key set we poll instead.
  if (typeof EventSource === 'function' && !getApiKey()) {
    mode = 'sse';
    source = new EventSource(eventsUrl(hash));
    source.addEventListener('job', (ev) => {
      heard = true;
      try {
        deliver(/** @type {JobView} */ (JSON.parse(/** @type {MessageEvent<string>} */ (ev).data)));
      } catch {
        startPolling();
      }
    });
    // The server says the song was deleted while we watched.
    source.addEventListener('gone', () => {
      stop();
      handlers.onTrouble?.(new ApiError('The server no longer has this song.', 404, 'not_found'), true);
    });
    source.addEventListener('error', () => {
      if (mode !== 'sse') return;
      // The server ends a stream that has delivered when it reaches its lifetime: EventSource
      // reconnects by itself (after the server's retry:) and the new stream opens with the current
      // state. A refused (re)connection (a 429 closes the source) or one that brought nothing polls.
      if (heard && source?.readyState === EventSource.CONNECTING) {
        heard = false;
        return;
      }
      startPolling();
    });
  } else {
    startPolling();
  }

  return {
    stop,
    get mode() {
      return mode;
    },
  };
}
