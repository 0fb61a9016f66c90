// @ts-check
// The page's event bus: the views (upload, song, mixer, recent list) never call each other;
// each says what happened on the bus and listens for what it cares about. The event map is
// typed, so an event name or payload that does not match is a type error.

/** @typedef {import('./api.js').InfoResponse} InfoResponse */
/** @typedef {import('./api.js').SubmitResponse} SubmitResponse */
/** @typedef {import('./api.js').JobView} JobView */

/**
 * Every event on the page and what it carries.
 * @typedef {object} PageEvents
 * @property {InfoResponse} info `GET /apiv1/info` answered (upload limit, track order, model)
 * @property {{ message: string }} infoFailed it did not
 * @property {{ key: string }} apiKey the user changed the API key
 * @property {{ name: string, response: SubmitResponse }} submitted an upload was accepted
 * @property {{ hash: string, name?: string, reveal?: boolean }} open a request to show a song (`reveal`: scroll to it)
 * @property {{ hash: string, name: string }} opened the song view now shows this song
 * @property {{ hash: string, name: string }} named the open song's name became known (from the server's job)
 * @property {{ hash: string | null }} closed the song view was emptied (`hash`: what it showed)
 * @property {JobView} job news about the open song's job
 * @property {{ hash: string }} gone the server no longer has the open song
 * @property {{ hash: string, name: string, from: 'song' | 'recent' }} deleted a song was deleted (or dropped from the list)
 */

/**
 * A minimal typed emitter. Handlers run synchronously, in the order they were added; a handler
 * may emit further events.
 * @template {object} M event name → payload
 */
export class Emitter {
  constructor() {
    /** @type {{ [K in keyof M]?: Set<(payload: M[K]) => void> }} */
    this.handlers = {};
  }

  /**
   * @template {keyof M} K
   * @param {K} type
   * @param {(payload: M[K]) => void} handler
   * @returns {() => void} removes the handler
   */
  on(type, handler) {
    const set = this.handlers[type] ?? (this.handlers[type] = new Set());
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * @template {keyof M} K
   * @param {K} type
   * @param {M[K]} payload
   */
  emit(type, payload) {
    for (const handler of [...(this.handlers[type] ?? [])]) handler(payload);
  }
}

/** @typedef {Emitter<PageEvents>} Bus */
