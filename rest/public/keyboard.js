// @ts-check
// The player's keys: Space is play/pause wherever focus is (Mute, a slider, a link…) unless it is
// in a text field; on the position slider the arrows and Page keys jump, Home and End go to the
// ends. destroy() releases the listeners.

/** @typedef {import('./player.js').StemPlayer} StemPlayer */

/** Seconds each key moves the position slider by. @type {Record<string, number>} */
const JUMPS = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -15, PageUp: 15 };

/** Whether a key press there types text (so Space is not play/pause). @param {EventTarget | null} t */
function typesText(t) {
  if (!(t instanceof HTMLElement)) return false;
  if (t.isContentEditable || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement) return true;
  return t instanceof HTMLInputElement && !['range', 'checkbox', 'radio', 'button', 'submit', 'reset', 'file', 'color'].includes(t.type);
}

/**
 * @param {{ play: HTMLButtonElement, seek: HTMLInputElement, player: HTMLElement }} el
 * @param {StemPlayer} player
 * @returns {{ destroy: () => void }}
 */
export function playerKeys(el, player) {
  const subscriptions = new AbortController();
  const { signal } = subscriptions;
  const toggle = () => {
    if (player.playing) player.pause();
    else void player.play();
  };
  el.seek.addEventListener('keydown', (e) => {
    const jump = JUMPS[e.key];
    if (jump !== undefined) {
      e.preventDefault();
      player.seek(player.currentTime + jump);
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      player.seek(e.key === 'Home' ? 0 : player.duration);
    }
  }, { signal });
  // Captured before the focused control sees it; the keyup is swallowed too, because a focused
  // button would otherwise take Space's keyup as a click.
  let spaceTaken = false;
  document.addEventListener('keydown', (e) => {
    if (e.key !== ' ' || e.ctrlKey || e.metaKey || e.altKey || typesText(e.target) || el.play.disabled || el.player.hidden) return;
    e.preventDefault();
    e.stopPropagation();
    spaceTaken = true;
    if (!e.repeat) toggle();
  }, { capture: true, signal });
  document.addEventListener('keyup', (e) => {
    if (e.key !== ' ' || !spaceTaken) return;
    spaceTaken = false;
    e.preventDefault();
    e.stopPropagation();
  }, { capture: true, signal });
  return { destroy: () => subscriptions.abort() };
}
