// The page's practice tools and what it keeps, in headless Chromium against a real rest app, Redis
// and s3rver, with test-tone stems (no worker): tempo without a key change and key without a tempo
// change (an FFT of the rendered mix), the A–B loop, the mixer's state in the URL and back, the
// "Download this mix" link, and the per-key library from GET /apiv1/jobs. Also writes the docs'
// desktop and phone screenshots (when missing, or with UPDATE_SCREENSHOTS=1).
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumProblem, launchChromium, pageServer, peakHz, songBytes, soundingSeconds, toneStems, type PageServer } from './helpers/page-under-test.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SHOTS = path.join(ROOT, 'test-output', 'page');
const problem = chromiumProblem();
if (problem) console.warn(problem);

interface PlayerApi {
  playing: boolean;
  currentTime: number;
  duration: number;
  tempo: number;
  pitch: number;
  master: number;
  shifting: boolean;
  loop: { a: number; b: number } | null;
  stems: Record<string, { volume: number; muted: boolean; soloed: boolean; audible: boolean }>;
  render(opts?: { from?: number; seconds?: number }): Promise<{ sampleRate: number; samples: number[] }>;
}
const api = (page: Page) => page.evaluate(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer);

/** Copies a screenshot into docs/ when it is missing there or UPDATE_SCREENSHOTS=1. */
function publish(name: string, target: string): void {
  if (process.env.UPDATE_SCREENSHOTS === '1' || !existsSync(target)) copyFileSync(path.join(SHOTS, name), target);
}

describe.skipIf(problem !== null)('practice tools, the mix in the URL and the library (headless Chromium)', () => {
  let srv: PageServer;
  let browser: Browser;
  let hash: string;
  const errors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [srv, browser] = await Promise.all([pageServer('page-practice'), launchChromium()]);
    hash = (await songBytes(601)).hash;
    await srv.submit('Tone study.mp3', (await songBytes(601)).bytes);
    await srv.separate(hash, await toneStems(3));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  async function open(fragment: string, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...opts });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${srv.url}/${fragment}`);
    await page.waitForSelector('#player[data-state="paused"]', { timeout: 20_000 });
    return { page, context };
  }

  /** Solo the drums (a 440 Hz tone, 3 s) and render the mix. */
  async function renderDrums(page: Page) {
    if ((await page.getAttribute('li.stem[data-track="drums"] button.solo', 'aria-pressed')) !== 'true') await page.click('li.stem[data-track="drums"] button.solo');
    const { sampleRate, samples } = await page.evaluate(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.render());
    return { seconds: soundingSeconds(samples, sampleRate), hz: peakHz(samples, sampleRate) };
  }

  it('tempo changes the rendered duration and not the pitch; key changes the pitch and not the duration', async () => {
    const { page, context } = await open(`#${hash}`);
    const plain = await renderDrums(page);
    expect(plain.seconds).toBeCloseTo(3, 1);
    expect(plain.hz).toBeGreaterThan(438);
    expect(plain.hz).toBeLessThan(442);

    await page.locator('#tempo').fill('75');
    await expect(page.textContent('#tempo-out')).resolves.toBe('75 %');
    await page.waitForFunction(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.shifting);
    const slow = await renderDrums(page);
    expect(Math.abs(slow.seconds - 3 / 0.75)).toBeLessThan(0.15);
    expect(Math.abs(slow.hz - 440) / 440).toBeLessThan(0.01);

    await page.locator('#tempo').fill('125');
    const fast = await renderDrums(page);
    expect(Math.abs(fast.seconds - 3 / 1.25)).toBeLessThan(0.15);
    expect(Math.abs(fast.hz - 440) / 440).toBeLessThan(0.01);

    await page.locator('#tempo').fill('100');
    await page.locator('#pitch').fill('3');
    await expect(page.textContent('#pitch-out')).resolves.toBe('+3 st');
    const up = await renderDrums(page);
    expect(Math.abs(up.seconds - 3)).toBeLessThan(0.15);
    expect(Math.abs(up.hz - 440 * 2 ** (3 / 12)) / (440 * 2 ** (3 / 12))).toBeLessThan(0.01);

    // In real time: the stems go through the shifter and the position runs at the tempo.
    await page.locator('#pitch').fill('0');
    await page.locator('#tempo').fill('50');
    expect((await api(page)).shifting).toBe(true);
    await page.click('#play');
    await page.waitForFunction(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.currentTime > 0.05);
    const t0 = await page.evaluate(() => [(window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.currentTime, performance.now()]);
    await page.waitForTimeout(1000);
    const t1 = await page.evaluate(() => [(window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.currentTime, performance.now()]);
    const rate = (t1[0]! - t0[0]!) / ((t1[1]! - t0[1]!) / 1000);
    expect(rate).toBeGreaterThan(0.4);
    expect(rate).toBeLessThan(0.6);
    await page.click('#play');
    await context.close();
  }, 60_000);

  it('an A–B loop dragged across a waveform keeps playback inside it, wrapping from B to A', async () => {
    const { page, context } = await open(`#${hash}`);
    const box = (await page.locator('li.stem[data-track="bass"] canvas').boundingBox())!;
    const y = box.y + box.height / 2;
    await page.mouse.move(box.x + box.width * 0.25, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, y, { steps: 4 });
    await page.mouse.move(box.x + box.width * 0.5, y, { steps: 4 });
    await page.mouse.up();
    const { loop } = await api(page);
    expect(loop!.a).toBeCloseTo(0.75, 1);
    expect(loop!.b).toBeCloseTo(1.5, 1);
    expect(await page.getAttribute('#loop-toggle', 'aria-pressed')).toBe('true');
    await expect(page.textContent('#loop-text')).resolves.toMatch(/^A 0:00\.\d · B 0:01\.\d · looping$/);

    await page.click('#play');
    const seen: number[] = [];
    for (let i = 0; i < 25; i++) {
      seen.push((await api(page)).currentTime);
      await page.waitForTimeout(100);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(0.74);
    expect(Math.max(...seen)).toBeLessThan(1.5);
    expect(seen.some((t, i) => i > 0 && t < seen[i - 1]!), `wrapped: ${seen.map((t) => t.toFixed(2)).join(' ')}`).toBe(true);
    // Loop off: playback runs on past B.
    await page.click('#loop-toggle');
    await page.waitForFunction(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.currentTime > 1.6, null, { timeout: 5000 });
    await page.click('#play');
    await context.close();
  }, 30_000);

  it('the mix (volumes, mutes, solos, master, loop, tempo, key) goes into the URL and a new browser reopens it; Download this mix sends it', async () => {
    const { page, context } = await open(`#${hash}`);
    await page.locator('li.stem[data-track="drums"] input.vol-num').fill('50');
    await page.click('li.stem[data-track="bass"] button.mute');
    await page.click('li.stem[data-track="other"] button.solo');
    await page.click('li.stem[data-track="drums"] button.solo');
    await page.locator('#master').fill('80');
    await page.locator('#tempo').fill('90');
    await page.locator('#pitch').fill('-2');
    await page.evaluate(() => (window as unknown as { msaasPlayer: PlayerApi & { seek(t: number): void } }).msaasPlayer.seek(0.5));
    await page.click('#loop-a');
    await page.evaluate(() => (window as unknown as { msaasPlayer: PlayerApi & { seek(t: number): void } }).msaasPlayer.seek(2));
    await page.click('#loop-b');
    await page.waitForFunction(() => location.hash.includes('pitch=-2') && location.hash.includes('loop='));
    const url = await page.evaluate(() => location.href);
    expect(new URL(url).hash).toBe(`#${hash}?drums=0.5&mute=bass&solo=drums,other&master=0.8&loop=0.5-2&tempo=0.9&pitch=-2`);
    // The server renders the same mix: gains with mutes and solos applied, times the master.
    const href = await page.getAttribute('#download-mix', 'href');
    expect(href).toBe(`/apiv1/jobs/${hash}/mix?drums=0.4&bass=0&other=0.8&vocals=0&format=mp3`);
    // The server mixes it: an MP3 named after the song.
    const [mixDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download-mix')]);
    expect(mixDownload.suggestedFilename()).toBe('Tone study-mix.mp3');
    const mixBytes = readFileSync(await mixDownload.path());
    expect(mixBytes.length).toBeGreaterThan(4096);
    const id3 = mixBytes.subarray(0, 3).toString('latin1') === 'ID3';
    expect(id3 || (mixBytes[0] === 0xff && (mixBytes[1]! & 0xe0) === 0xe0)).toBe(true);
    await page.selectOption('#mix-format', 'flac');
    await page.waitForFunction(() => document.querySelector('#download-mix')?.getAttribute('href')?.endsWith('format=flac'));
    expect(await page.getAttribute('#download-mix', 'download')).toBe('Tone study-mix.flac');
    await context.close();

    const again = await open(new URL(url).hash);
    const p = await api(again.page);
    expect(p.stems.drums).toMatchObject({ volume: 0.5, soloed: true, muted: false });
    expect(p.stems.bass).toMatchObject({ muted: true });
    expect(p.stems.other).toMatchObject({ soloed: true, audible: true });
    expect(p.stems.vocals).toMatchObject({ audible: false });
    expect(p).toMatchObject({ master: 0.8, tempo: 0.9, pitch: -2, loop: { a: 0.5, b: 2 } });
    expect(await again.page.inputValue('li.stem[data-track="drums"] input.vol-num')).toBe('50');
    expect(await again.page.getAttribute('li.stem[data-track="bass"] button.mute', 'aria-pressed')).toBe('true');
    expect(await again.page.inputValue('#tempo')).toBe('90');
    await expect(again.page.textContent('#pitch-out')).resolves.toBe('−2 st');
    expect(new URL(again.page.url()).hash).toBe(new URL(url).hash);
    await again.context.close();
  }, 40_000);

  it('writes the desktop and phone screenshots of a finished song with a loop and practice settings', async () => {
    for (const [name, target, opts] of [
      ['10-practice-desktop.png', 'screenshot-done.png', { viewport: { width: 1280, height: 900 } }],
      ['11-practice-phone.png', 'screenshot-mobile.png', { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 }],
    ] as const) {
      const { page, context } = await open(`#${hash}?drums=0.8&mute=bass&loop=0.9-2.1&tempo=0.85`, opts);
      await page.waitForFunction(() => (window as unknown as { msaasPlayer: PlayerApi }).msaasPlayer.tempo === 0.85);
      expect(await page.evaluate(() => matchMedia('(pointer: coarse)').matches)).toBe(name.includes('phone'));
      await page.evaluate(() => (window as unknown as { msaasPlayer: PlayerApi & { seek(t: number): void } }).msaasPlayer.seek(1.4));
      // A viewport as tall as the page rather than fullPage: a full-page shot of an emulated phone
      // is drawn without the touch emulation (mouse-sized controls, keyboard hints back).
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.setViewportSize({ width: opts.viewport.width, height });
      await page.waitForTimeout(300);
      await page.screenshot({ path: path.join(SHOTS, name) });
      publish(name, path.join(ROOT, 'docs', target));
      await context.close();
    }
  }, 40_000);

  it('logs no console errors on any of these pages', () => {
    expect(errors).toEqual([]);
  });
});

describe.skipIf(problem !== null)('the library of an API key (headless Chromium)', () => {
  const KEY = 'k-page-library';
  let srv: PageServer;
  let browser: Browser;

  beforeAll(async () => {
    [srv, browser] = await Promise.all([pageServer('page-library', { API_KEYS: `lib:${KEY}`, MAX_ACTIVE_JOBS_PER_KEY: '100' }), launchChromium()]);
    for (let i = 1; i <= 23; i++) {
      const { bytes } = await songBytes(700 + i, 0.5);
      const h = await srv.submit(`Take ${String(i).padStart(2, '0')}.mp3`, bytes, KEY);
      if (i === 1) await srv.separate(h, { drums: bytes, bass: bytes, other: bytes, vocals: bytes }, 75);
      await new Promise((r) => setTimeout(r, 3));
    }
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('lists the key\'s songs from the server in a browser that never uploaded them: names, states, durations, newest first, paged', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((key) => localStorage.setItem('msaas.apiKey', key), KEY);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${srv.url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.waitForFunction(() => document.querySelectorAll('#recent-list li').length === 20);
    const names = await page.locator('#recent-list .recent-name').allTextContents();
    expect(names.slice(0, 3)).toEqual(['Take 23.mp3', 'Take 22.mp3', 'Take 21.mp3']);
    expect(await page.getAttribute('#recent-list li:first-child', 'data-state')).toBe('queued');
    await expect(page.isVisible('#recent-source')).resolves.toBe(true);
    await page.click('#recent-more');
    await page.waitForFunction(() => document.querySelectorAll('#recent-list li').length === 23);
    await expect(page.isHidden('#recent-more')).resolves.toBe(true);
    const last = page.locator('#recent-list li').last();
    expect(await last.getAttribute('data-state')).toBe('done');
    await expect(last.locator('.recent-name').textContent()).resolves.toBe('Take 01.mp3');
    await expect(last.locator('.recent-sub').textContent()).resolves.toMatch(/0:01 long · separated in 1:15/);
    expect(errors).toEqual([]);
    await context.close();
  }, 30_000);
});
