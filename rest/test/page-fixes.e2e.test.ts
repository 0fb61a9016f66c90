// The page as musicians use it (issue 15's numbered bugs), in headless Chromium against a real rest
// app, Redis and s3rver; songs are separated through the queue's real transitions with test-tone
// stems (no worker, so this file is quick): download names, the song's name in a fresh browser,
// progress between reports and a finish in the background, Space as play/pause, wrong files
// refused in the browser by name, a silent stem, touch targets on a phone.
import { unzipSync } from 'fflate';
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS } from '@msaas/common';
import { chromiumProblem, launchChromium, pageServer, songBytes, toneStems, type PageServer } from './helpers/page-under-test.ts';

const problem = chromiumProblem();
if (problem) console.warn(problem);

type Win = { msaasPlayer: { playing: boolean; currentTime: number; stems: Record<string, { muted: boolean; volume: number }> } };

describe.skipIf(problem !== null)('the page as musicians use it (headless Chromium, real rest, Redis and store)', () => {
  let srv: PageServer;
  let browser: Browser;
  let hash: string;
  const errors: string[] = [];

  beforeAll(async () => {
    [srv, browser] = await Promise.all([pageServer('page-fixes'), launchChromium()]);
    const song = await songBytes(501);
    hash = await srv.submit('Short hop.mp3', song.bytes);
    await srv.separate(hash, await toneStems(3));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  /** A page in a fresh profile (its own context: no localStorage), console errors collected. */
  async function fresh(path: string, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...opts });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${srv.url}${path}`);
    await page.waitForSelector('body[data-ready="true"]');
    return { page, context };
  }

  async function openDone(opts?: Parameters<Browser['newContext']>[0]) {
    const opened = await fresh(`/#${hash}`, opts);
    await opened.page.waitForSelector('#player[data-state="paused"]', { timeout: 20_000 });
    return opened;
  }

  it('1–2: a link opened in a fresh browser shows the song\'s name, lists it under Recent songs, and downloads <song name>-<track>', async () => {
    const { page, context } = await openDone();
    await expect(page.textContent('#song-title')).resolves.toBe('Short hop.mp3');
    await page.waitForSelector(`#recent-list li[data-hash="${hash}"][data-state="done"]`);
    await expect(page.textContent(`#recent-list li[data-hash="${hash}"] .recent-name`)).resolves.toBe('Short hop.mp3');

    const [stem] = await Promise.all([page.waitForEvent('download'), page.click('li.stem[data-track="vocals"] a.download')]);
    expect(stem.suggestedFilename()).toBe('Short hop-vocals.mp3');
    const [zip] = await Promise.all([page.waitForEvent('download'), page.click('#download-all')]);
    expect(zip.suggestedFilename()).toBe('Short hop-stems.zip');
    const entries = Object.keys(unzipSync(new Uint8Array(readFileSync(await zip.path()))));
    expect(entries.sort()).toEqual(TRACKS.map((t) => `Short hop-${t}.mp3`).sort());
    // The server's own header carries the name (it wins over the page's download attribute).
    const header = await page.evaluate(async (h) => (await fetch(`/apiv1/track/${h}/bass.mp3`)).headers.get('content-disposition'), hash);
    expect(header).toBe('inline; filename="Short hop-bass.mp3"');
    await context.close();
  }, 30_000);

  it('3: progress moves between the worker\'s reports, shows elapsed time and time left, and a finish in a background tab shows in its title', async () => {
    const song = await songBytes(502, 2);
    const slow = await srv.submit('Slow song.mp3', song.bytes);
    const { page, context } = await fresh(`/#${slow}`);
    await page.waitForSelector('#song[data-state="queued"]');
    await expect(page.textContent('#job-eta')).resolves.toMatch(/^Ready in about \d+ (s|min)$/);

    await srv.worker.claim(slow);
    await page.waitForSelector('#song[data-state="processing"]');
    await page.waitForTimeout(1000);
    await srv.worker.progress(slow, 0.25);
    await page.waitForFunction(() => document.querySelector('#job-progress')?.getAttribute('data-reported') === '0.25');
    // No report for 1.5 s: the bar keeps moving at the measured speed (capped below the next report).
    await page.waitForTimeout(1500);
    const shown = await page.evaluate(() => (document.querySelector('#job-progress') as HTMLProgressElement).value);
    expect(shown).toBeGreaterThan(0.3);
    expect(shown).toBeLessThanOrEqual(0.5);
    await expect(page.textContent('#job-text')).resolves.toMatch(/^Separating… (3\d|4\d|50)%$/);
    await expect(page.textContent('#job-eta')).resolves.toMatch(/^Elapsed 0:0[2-9] · about \d+ s left$/);

    // The tab goes to the background; the song finishes meanwhile. (Headless Chromium never hides
    // a tab — neither another tab in front nor a minimised window changes its visibility — so the
    // test sets what a hidden tab reports and fires the event the browser would.)
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    await page.waitForFunction(() => /^\d+% · Slow song\.mp3 — MSaaS$/.test(document.title));
    for (const t of TRACKS) await srv.under.rest.deps.store.putStem(slow, t, song.bytes);
    await srv.worker.recordStems(slow);
    await srv.worker.complete(slow, 4);
    await page.waitForFunction(() => document.title.startsWith('✓'), null, { timeout: 10_000 });
    expect(await page.title()).toBe('✓ Slow song.mp3 is ready — MSaaS');
    await setHidden(false);
    expect(await page.title()).toBe('MSaaS — split a song into stems');
    await context.close();
  }, 40_000);

  it('4: Space plays and pauses after clicking Mute or a slider; in a text field it types a space', async () => {
    const { page, context } = await openDone();
    const player = () => page.evaluate(() => (window as unknown as Win).msaasPlayer);
    await page.click('li.stem[data-track="drums"] button.mute');
    expect(await page.getAttribute('li.stem[data-track="drums"] button.mute', 'aria-pressed')).toBe('true');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.playing);
    // Space did not press the focused Mute button again.
    expect(await page.getAttribute('li.stem[data-track="drums"] button.mute', 'aria-pressed')).toBe('true');
    expect((await player()).stems.drums!.muted).toBe(true);
    await page.focus('li.stem[data-track="bass"] input.vol-input');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => !(window as unknown as Win).msaasPlayer.playing);
    await page.focus('#seek');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.playing);
    await page.keyboard.press('Space');
    await page.waitForFunction(() => !(window as unknown as Win).msaasPlayer.playing);

    await page.click('#settings summary');
    await page.click('#api-key');
    await page.keyboard.type('a b');
    expect(await page.inputValue('#api-key')).toBe('a b');
    expect((await player()).playing).toBe(false);
    await context.close();
  }, 30_000);

  it('5: a wrong file is refused in the browser, before any byte is uploaded, with its name in the message', async () => {
    const { page, context } = await fresh('/');
    const posts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST') posts.push(r.url());
    });
    await page.setInputFiles('#file', { name: 'setlist.txt', mimeType: 'text/plain', buffer: Buffer.from('1. Intro\n2. The long one\n'.repeat(40)) });
    await page.waitForSelector('#upload[data-state="error"]');
    await expect(page.textContent('#upload-error')).resolves.toBe('“setlist.txt” isn’t an audio file (it looks like text). Choose an MP3, WAV, FLAC, Ogg or M4A file.');
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3])], 'cover.png', { type: 'image/png' }));
      return dt;
    });
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer });
    await page.waitForFunction(() => /cover\.png/.test(document.querySelector('#upload-error')?.textContent ?? ''));
    await expect(page.textContent('#upload-error')).resolves.toMatch(/^“cover\.png” isn’t an audio file \(it looks like a PNG image\)/);
    expect(posts).toEqual([]);
    await context.close();
  }, 20_000);

  it('the stems\' format chosen at upload goes with the file as the format field', async () => {
    const { page, context } = await fresh('/');
    await page.selectOption('#upload-format', 'flac');
    const song = await songBytes(503);
    await page.setInputFiles('#file', { name: 'Flac please.mp3', mimeType: 'audio/mpeg', buffer: Buffer.from(song.bytes) });
    await page.waitForSelector('#song:not([hidden])');
    await expect(page.textContent('#song-title')).resolves.toBe('Flac please.mp3');
    // The job the server recorded makes FLAC stems.
    expect((await srv.under.rest.deps.queue.getJob(song.hash))?.formats).toEqual(['flac']);
    await context.close();
  }, 20_000);

  it('6: a silent stem says "No vocals detected" instead of drawing a flat line; a quiet one is still drawn', async () => {
    const { page, context } = await openDone();
    expect(await page.getAttribute('li.stem[data-track="vocals"]', 'data-silent')).toBe('true');
    await expect(page.isVisible('li.stem[data-track="vocals"] .silent-note')).resolves.toBe(true);
    await expect(page.textContent('li.stem[data-track="vocals"] .silent-note')).resolves.toBe('No vocals detected');
    await expect(page.getAttribute('li.stem[data-track="vocals"] canvas', 'aria-label')).resolves.toMatch(/no vocals detected/);
    // "other" is a −20 dBFS tone: quiet, not silent.
    expect(await page.getAttribute('li.stem[data-track="other"]', 'data-silent')).toBe('false');
    expect(Number(await page.getAttribute('li.stem[data-track="other"]', 'data-peak-db'))).toBeGreaterThan(-25);
    await expect(page.isVisible('li.stem[data-track="other"] .silent-note')).resolves.toBe(false);
    await context.close();
  }, 20_000);

  it('7: on a phone every stem control is at least 44 px and none overlap; keyboard hints are gone', async () => {
    const { page, context } = await openDone({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
    expect(await page.evaluate(() => matchMedia('(pointer: coarse)').matches)).toBe(true);
    const boxes = await page.evaluate(() =>
      [...document.querySelectorAll('li.stem')].map((row) =>
        ['button.mute', 'button.solo', 'a.download', 'button.delete', 'input.vol-num'].map((sel) => {
          const r = row.querySelector(sel)!.getBoundingClientRect();
          return { sel, x: r.x, y: r.y, w: r.width, h: r.height };
        }),
      ),
    );
    expect(boxes).toHaveLength(4);
    for (const row of boxes) {
      for (const b of row) {
        expect(b.w, `${b.sel} width`).toBeGreaterThanOrEqual(44);
        expect(b.h, `${b.sel} height`).toBeGreaterThanOrEqual(44);
      }
      for (let i = 0; i < row.length; i++) {
        for (let j = i + 1; j < row.length; j++) {
          const [p, q] = [row[i]!, row[j]!];
          const overlap = p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
          expect(overlap, `${p.sel} overlaps ${q.sel}`).toBe(false);
        }
      }
    }
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > 390.5 && !e.closest('[hidden]') && ![...e.children].some((c) => c.getBoundingClientRect().right > 390.5)).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`).slice(0, 8),
    );
    expect(wide, 'elements wider than the phone').toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await expect(page.isVisible('.footer .kbd-hint')).resolves.toBe(false);
    await context.close();
  }, 20_000);

  it('logs no console errors on any of these pages', () => {
    expect(errors).toEqual([]);
  });
});
