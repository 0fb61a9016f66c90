// @ts-check
// Small DOM helpers shared by the views: typed element lookup, template rows, the live region,
// two-press confirmation, state badges.

/** @typedef {import('./recent.js').SongState} SongState */

/**
 * The element matching `selector`, checked to be a `type` (so the rest of the code may rely on it).
 * @template {Element} T
 * @param {string} selector
 * @param {{ new (): T, prototype: T }} type
 * @param {ParentNode} [root]
 * @returns {T}
 */
export function $(selector, type, root = document) {
  const el = root.querySelector(selector);
  if (!(el instanceof type)) throw new Error(el ? `${selector} is not a ${type.name}` : `missing ${selector}`);
  return el;
}

/** @typedef {{ new (): Element, prototype: Element }} ElementType */

/**
 * Elements by id, each checked to be its type: a camelCase name stands for the kebab-case id,
 * so `byId({ uploadStatus: HTMLElement })` is `{ uploadStatus: <#upload-status> }`.
 * @template {Record<string, ElementType>} S
 * @param {S} types
 * @returns {{ [K in keyof S]: S[K]['prototype'] }}
 */
export function byId(types) {
  /** @type {Record<string, Element>} */
  const found = {};
  for (const [name, type] of Object.entries(types)) {
    found[name] = $(`#${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, type);
  }
  return /** @type {{ [K in keyof S]: S[K]['prototype'] }} */ (found);
}

/**
 * A fresh copy of a `<template>`'s row element.
 * @param {HTMLTemplateElement} template
 * @returns {HTMLLIElement}
 */
export function cloneRow(template) {
  return $('li', HTMLLIElement, /** @type {DocumentFragment} */ (template.content.cloneNode(true)));
}

/** @param {unknown} err */
export const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/** @type {Record<SongState, string>} */
const STATE_LABELS = {
  queued: 'Queued', processing: 'Separating', done: 'Done', failed: 'Failed', gone: 'Deleted', unknown: 'Unknown',
};

/** The word for a state (states stored by an older page fall back to themselves). @param {SongState} state */
export const stateLabel = (state) => STATE_LABELS[state] ?? state;

/** @param {HTMLElement} badge @param {SongState} state */
export function showBadge(badge, state) {
  badge.dataset.state = state;
  badge.textContent = stateLabel(state);
}

/** Screen-reader announcement (polite; repeated messages are re-announced). @param {string} msg */
export function announce(msg) {
  const announcer = $('#announcer', HTMLElement);
  announcer.textContent = '';
  window.setTimeout(() => { announcer.textContent = msg; }, 30);
}

/**
 * Two-step confirmation for destructive buttons: the first press arms it, the second acts.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<void>} action
 * @param {AbortSignal} [signal] removes the listener
 */
export function confirmTwice(button, action, signal) {
  let timer = 0;
  const originalLabel = button.getAttribute('aria-label');
  const originalText = button.classList.contains('icon-btn') ? null : button.textContent;
  const disarm = () => {
    button.dataset.armed = 'false';
    if (originalLabel !== null) button.setAttribute('aria-label', originalLabel);
    if (originalText !== null) button.textContent = originalText;
  };
  button.addEventListener('click', async () => {
    if (button.dataset.armed !== 'true') {
      button.dataset.armed = 'true';
      const prompt = button.dataset.confirm ?? 'Click again to delete';
      if (originalText !== null) button.textContent = 'Click again to delete';
      button.setAttribute('aria-label', prompt);
      button.title = prompt;
      announce(prompt);
      clearTimeout(timer);
      timer = window.setTimeout(disarm, 4000);
      return;
    }
    clearTimeout(timer);
    disarm();
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  }, { signal });
}

/** A file name without its extension, safe for a download name. @param {string} name */
export function baseName(name) {
  return name.replace(/\.[^.]+$/, '').replace(/[^\w\- .()]+/g, '_').trim() || 'song';
}
