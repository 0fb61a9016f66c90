// The page plays while it separates (issue 21, items 4–5), in headless Chromium against a real rest
// app, Redis and s3rver. No worker: the test is one, through the queue's real transitions — it
// stores each progressive piece (raw float32 planar, the contract's layout) and then reports it
// with the progress transition, exactly in the order a worker does, and at the end stores the
// finished stems (the same test tones, as MP3) and completes the job.
import { mkdirSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRACKS, type Track } from '@msaas/common';
import { encodeMp3 } from '@msaas/common/audio-encode/index';
import { RATE, chromiumProblem, launchChromium, pageServer, songBytes, tone, type PageServer } from './helpers/page-under-test.ts';

const problem = chromiumProblem();
if (problem) console.warn(problem);

const OUT = path.resolve(import.meta.dirname, '../../test-output/page');
const DOCS = path.resolve(import.meta.dirname, '../../docs');

/** A 20 s song in five 4 s pieces (the real stride is 5.85 s; the page takes the ends from the job). */
const SONG_SEC = 20;
const PIECE_FRAMES = 4 * RATE;
const TOTAL_FRAMES = SONG_SEC * RATE;
const ENDS = [1, 2, 3, 4, 5].map((i) => i * PIECE_FRAMES);
/** The stems' test tones, as in the other page tests: drums 440 Hz, bass 220 Hz, other 880 Hz (quiet), vocals silent. */
const TONES: Record<Track, [number, number]> = { drums: [440, 0.5], bass: [220, 0.3], other: [880, 0.1], vocals: [0, 0] };

type Win = {
  msaasPlayer: {
    playing: boolean; currentTime: number; duration: number; ready: number; complete: boolean; stalled: boolean;
    seek(t: number): void;
    render(o: { from?: number; seconds?: number }): Promise<{ sampleRate: number; samples: number[] }>;
  };
  __trace: { t: number; bar: number | null; eta: string; state: string; pos: number; playing: boolean; complete: boolean }[];
  __t0: number;
};

/** Piece `seq` of the song: per stem (STEMS order) the left channel's frames, then the right's. */
function pieceBytes(stems: Record<Track, Float32Array[]>, seq: number): Uint8Array {
  const start = seq > 0 ? ENDS[seq - 1]! : 0;
  const n = ENDS[seq]! - start;
  const out = new Float32Array(TRACKS.length * 2 * n);
  TRACKS.forEach((t, i) => {
    out.set(stems[t][0]!.subarray(start, start + n), 2 * i * n);
    out.set(stems[t][1]!.subarray(start, start + n), (2 * i + 1) * n);
  });
  return new Uint8Array(out.buffer);
}

/** `about 20 s` / `about 3 min` → seconds (null when the line has no time left). */
function etaSeconds(text: string): number | null {
  const m = /about (\d+) (s|min|h) left/.exec(text);
  if (!m) return null;
  return Number(m[1]) * (m[2] === 's' ? 1 : m[2] === 'min' ? 60 : 3600);
}

describe.skipIf(problem !== null)('the page plays while it separates (headless Chromium, real rest, Redis and store)', () => {
  let srv: PageServer;
  let browser: Browser;
  const errors: string[] = [];
  const floats = Object.fromEntries(TRACKS.map((t) => [t, tone(TONES[t][0], SONG_SEC, TONES[t][1])])) as Record<Track, Float32Array[]>;
  let finished: Record<Track, Uint8Array>;

  beforeAll(async () => {
    [srv, browser] = await Promise.all([pageServer('page-progressive'), launchChromium()]);
    finished = Object.fromEntries(await Promise.all(TRACKS.map(async (t) => [t, await encodeMp3(floats[t], RATE, { vbrQuality: 2 })]))) as Record<Track, Uint8Array>;
    mkdirSync(OUT, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    for (const context of browser?.contexts() ?? []) await context.close();
    await browser?.close();
    await srv?.close();
  }, 30_000);

  async function fresh(url: string, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...opts });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    await page.waitForSelector('body[data-ready="true"]');
    return { page, context };
  }

  /** The worker's part for piece `seq`: store it, then report it (progress-3.lua), as the worker does. */
  async function publish(hash: string, seq: number): Promise<void> {
    await srv.under.rest.deps.store.putPiece(hash, seq, pieceBytes(floats, seq));
    const outcome = await srv.under.rest.deps.queue.reportProgress(srv.worker.id, hash, (0.95 * ENDS[seq]!) / TOTAL_FRAMES, {
      readyFrames: ENDS[seq]!,
      totalFrames: TOTAL_FRAMES,
      pieceEnds: ENDS.slice(0, seq + 1),
    });
    expect(outcome).toBe('owned');
  }

  const player = (page: Page) => page.evaluate(() => {
    const p = (window as unknown as Win).msaasPlayer;
    return { playing: p.playing, currentTime: p.currentTime, duration: p.duration, ready: p.ready, complete: p.complete, stalled: p.stalled };
  });

  it('plays the ready part before the job is done, waits past it and says so, and plays on into the finished stems; the bar and the time left never go back', async () => {
    const song = await songBytes(601, 2);
    const hash = await srv.submit('Live song.mp3', song.bytes);
    const { page, context } = await fresh(`${srv.url}/#${hash}`);
    await page.waitForSelector('#song[data-state="queued"]');
    // Everything the listener sees, every 50 ms, from here to the end.
    await page.evaluate(() => {
      const w = window as unknown as Win;
      w.__trace = [];
      const t0 = performance.now();
      w.__t0 = t0;
      window.setInterval(() => {
        const bar = document.querySelector('#job-progress') as HTMLProgressElement;
        const job = document.querySelector('#job') as HTMLElement;
        const p = w.msaasPlayer;
        w.__trace.push({
          t: performance.now() - t0,
          bar: job.hidden ? 1 : bar.hasAttribute('value') ? bar.value : null,
          eta: document.querySelector('#job-eta')?.textContent ?? '',
          state: document.querySelector('#song')?.getAttribute('data-state') ?? '',
          pos: p.currentTime,
          playing: p.playing,
          complete: p.complete,
        });
      }, 50);
    });

    // Claimed, no report yet: no percentage, an indeterminate bar, nothing to play.
    await srv.worker.claim(hash);
    await page.waitForSelector('#song[data-state="processing"]');
    await page.waitForTimeout(600);
    await expect(page.textContent('#job-text')).resolves.toMatch(/waiting for its first report/);
    expect(await page.evaluate(() => document.querySelector('#job-progress')!.hasAttribute('value'))).toBe(false);
    await expect(page.textContent('#job-eta')).resolves.toMatch(/^Elapsed 0:0\d$/);
    expect(await page.isHidden('#player')).toBe(true);

    // Two pieces (8 s of 20): the play button comes on while the job is still processing.
    await publish(hash, 0);
    const reportedAt = Date.now();
    await page.waitForSelector('#play:not([disabled])', { timeout: 10_000 });
    console.log(`play enabled ${Date.now() - reportedAt} ms after the first piece was reported`);
    await publish(hash, 1);
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.ready >= 7.99);
    expect(await page.getAttribute('#song', 'data-state')).toBe('processing');
    expect(await page.getAttribute('#player', 'data-live')).toBe('true');
    await expect(page.textContent('#job-text')).resolves.toMatch(/^Separating… \d+% · 0:08 of 0:20 ready to play$/);
    await expect(page.textContent('#time-ready')).resolves.toBe(' · 0:08.0 ready');
    expect(await page.locator('li.stem[data-loaded="true"]').count()).toBe(4);
    await page.click('#play');
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.currentTime > 0.8, null, { timeout: 10_000 });
    const early = await player(page);
    expect(early).toMatchObject({ playing: true, complete: false, stalled: false, duration: SONG_SEC });

    // What plays is the pieces' audio: the drums alone, rendered through the same graph, are the 440 Hz tone.
    const liveMix = await page.evaluate(() => (window as unknown as Win).msaasPlayer.render({ from: 2, seconds: 1 }));
    expect(liveMix.samples.length).toBe(RATE);
    const peak = Math.max(...liveMix.samples.map(Math.abs));
    expect(peak).toBeGreaterThan(0.5); // drums 0.5 + bass 0.3 + other 0.1 at their peaks

    // Another piece while it plays: the ready part grows, playback runs on without a restart.
    const before = (await player(page)).currentTime;
    await publish(hash, 2);
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.ready >= 11.99);
    const after = await player(page);
    expect(after.playing).toBe(true);
    expect(after.currentTime).toBeGreaterThan(before);
    await shot(page, '12-separating-playing-desktop', 'screenshot-live.png');

    // Seeking past the ready part waits there and says so; seeking back plays again.
    await page.evaluate(() => (window as unknown as Win).msaasPlayer.seek(15));
    await page.waitForSelector('#player[data-state="waiting"]');
    const waiting = await player(page);
    expect(waiting).toMatchObject({ playing: true, stalled: true, currentTime: 15 });
    await expect(page.textContent('#player-msg')).resolves.toMatch(/^Waiting at 0:15\.0 for the separation — ready up to 0:12\.0 so far/);
    await page.waitForTimeout(400);
    expect((await player(page)).currentTime).toBe(15);
    await page.evaluate(() => (window as unknown as Win).msaasPlayer.seek(3));
    await page.waitForSelector('#player[data-state="playing"]');
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.currentTime > 3.3);
    await expect(page.textContent('#player-msg')).resolves.toBe('');

    // A fresh browser (a phone) opening the running song's link shows and plays what is ready.
    const phone = await fresh(`${srv.url}/#${hash}`, { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 2 });
    await phone.page.waitForSelector('#play:not([disabled])', { timeout: 15_000 });
    await phone.page.waitForFunction(() => (window as unknown as Win).msaasPlayer.ready >= 11.99, null, { timeout: 15_000 });
    expect(await player(phone.page)).toMatchObject({ complete: false, ready: 12 });
    await phone.page.click('#play');
    await phone.page.waitForFunction(() => (window as unknown as Win).msaasPlayer.currentTime > 0.3);
    // The upload card has folded under the song; scrolled to the last stem, the transport is still on screen.
    const order = await phone.page.evaluate(() => [document.querySelector('#song')!.getBoundingClientRect().top, document.querySelector('#upload')!.getBoundingClientRect().top]);
    expect(order[0]).toBeLessThan(order[1]!);
    await phone.page.evaluate(() => document.querySelector('li.stem[data-track="vocals"]')!.scrollIntoView({ block: 'end' }));
    await phone.page.waitForTimeout(200);
    const transport = await phone.page.evaluate(() => {
      const r = document.querySelector('.transport')!.getBoundingClientRect();
      const play = document.querySelector('#play')!.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, playTop: play.top, scrollY: window.scrollY };
    });
    expect(transport.scrollY).toBeGreaterThan(0);
    expect(transport.top).toBeGreaterThanOrEqual(-0.5);
    expect(transport.playTop).toBeGreaterThanOrEqual(0);
    expect(transport.bottom).toBeLessThan(844);
    await phone.page.evaluate(() => window.scrollTo(0, 0));
    await shot(phone.page, '13-separating-phone', 'screenshot-live-mobile.png', { width: 390 });

    // Playback that catches up with the separation waits at the edge, and goes on when the next piece is in.
    await page.evaluate(() => (window as unknown as Win).msaasPlayer.seek(11.5));
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.stalled, null, { timeout: 5_000 });
    expect(await player(page)).toMatchObject({ playing: true, currentTime: 12 });
    await page.waitForSelector('#player[data-state="waiting"]');
    await publish(hash, 3);
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.currentTime > 12.3, null, { timeout: 10_000 });
    expect(await player(page)).toMatchObject({ playing: true, stalled: false, ready: 16 });

    // The rest of the song, then the job is done with its finished stems: playback goes on into them
    // (from 2 s, so that a slow machine does not reach the song's end first).
    await page.evaluate(() => (window as unknown as Win).msaasPlayer.seek(2));
    const sinceSeek = await page.evaluate(() => performance.now() - (window as unknown as Win).__t0 + 100);
    await publish(hash, 4);
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.ready >= 19.99);
    for (const t of TRACKS) await srv.under.rest.deps.store.putStem(hash, t, finished[t]);
    await srv.worker.recordStems(hash);
    const swapFrom = (await player(page)).currentTime;
    await srv.worker.complete(hash, 9);
    await page.waitForFunction(() => (window as unknown as Win).msaasPlayer.complete, null, { timeout: 15_000 });
    const swapped = await player(page);
    expect(swapped.playing).toBe(true);
    expect(swapped.currentTime).toBeGreaterThan(swapFrom);
    await page.waitForTimeout(500);
    expect((await player(page)).currentTime).toBeGreaterThan(swapped.currentTime + 0.3);
    expect(await page.getAttribute('#player', 'data-live')).toBe('false');
    await expect(page.getAttribute('li.stem[data-track="bass"] a.download', 'href')).resolves.toMatch(new RegExp(`/${hash}/bass`));
    // The finished stems line up with the pieces (the same samples but for MP3's rounding): no jump at the swap.
    const doneMix = await page.evaluate(() => (window as unknown as Win).msaasPlayer.render({ from: 2, seconds: 1 }));
    let signal = 0;
    let noise = 0;
    for (let i = 0; i < liveMix.samples.length; i++) {
      signal += liveMix.samples[i]! ** 2;
      noise += (liveMix.samples[i]! - doneMix.samples[i]!) ** 2;
    }
    const sdr = 10 * Math.log10(signal / noise);
    console.log(`finished stems against the pieces: ${sdr.toFixed(1)} dB SDR`);
    expect(sdr).toBeGreaterThan(20);

    // Across the whole run: the position never went back while playing (but for the seeks), the bar and
    // the time left never went back either.
    const trace = await page.evaluate(() => (window as unknown as Win).__trace);
    const bars = trace.map((s) => s.bar).filter((b): b is number => b !== null);
    expect(bars.length).toBeGreaterThan(20);
    for (let i = 1; i < bars.length; i++) expect(bars[i], `bar at sample ${i}`).toBeGreaterThanOrEqual(bars[i - 1]!);
    const processing = trace.filter((s) => s.state === 'processing');
    const firstBar = processing.findIndex((s) => s.bar !== null);
    // No value before the first piece's report, then the share of the song that is ready (plus at most one step).
    expect(firstBar).toBeGreaterThan(0);
    expect(processing[firstBar]!.bar!).toBeLessThanOrEqual(0.2 + 0.2 * 0.95 + 1e-9);
    const etas = processing.map((s) => etaSeconds(s.eta)).filter((e): e is number => e !== null);
    expect(etas.length).toBeGreaterThan(5);
    for (let i = 1; i < etas.length; i++) expect(etas[i], `time left at sample ${i}`).toBeLessThanOrEqual(etas[i - 1]!);
    const aroundSwap = trace.filter((s) => s.playing && s.t > sinceSeek);
    for (let i = 1; i < aroundSwap.length; i++) expect(aroundSwap[i]!.pos, `position at ${aroundSwap[i]!.t.toFixed(0)} ms`).toBeGreaterThanOrEqual(aroundSwap[i - 1]!.pos);
    expect(aroundSwap.some((s) => s.complete)).toBe(true);

    await phone.context.close();
    await context.close();
  }, 90_000);

  it('a song done before its first piece could be fetched (the pieces go at done): the player leaves "loading" with the finished stems', async () => {
    const song = await songBytes(602, 2);
    const hash = await srv.submit('Quick song.mp3', song.bytes);
    // as fresh(), but the browser's own line for each refused piece ("Failed to load resource … 404") is expected here
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 404/.test(m.text())) errors.push(m.text());
    });
    // every piece fetch fails, as when the song is done and its pieces removed between the listing and the fetch
    let refused = 0;
    await context.route(/\/pieces\/\d+/, async (route) => {
      refused++;
      await route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: 'not_found', detail: 'the piece is gone' }) });
    });
    await page.goto(`${srv.url}/#${hash}`);
    await page.waitForSelector('body[data-ready="true"]');
    await srv.worker.claim(hash);
    await publish(hash, 0);
    await page.waitForSelector('#player[data-live="true"][data-state="loading"]');
    await expect.poll(() => refused, { timeout: 10_000 }).toBeGreaterThan(0);
    for (const t of TRACKS) await srv.under.rest.deps.store.putStem(hash, t, finished[t]);
    await srv.worker.recordStems(hash);
    await srv.worker.complete(hash, SONG_SEC);
    await page.waitForSelector('#player[data-state="paused"]', { timeout: 20_000 });
    expect(await page.locator('#stems li.stem[data-loaded="true"]').count()).toBe(TRACKS.length);
    expect(await page.getAttribute('#player', 'data-live')).toBe('false');
    expect(await page.isDisabled('#play')).toBe(false);
    await context.close();
  }, 60_000);

  it('logs no console errors', () => {
    expect(errors).toEqual([]);
  });
});

/**
 * test-output/page/<name>.png, and docs/<docsName> when it is missing or with UPDATE_SCREENSHOTS=1.
 * @param viewport a phone's width: the shot is as tall as the page (see docs/web.md: full-page shots
 * of an emulated phone lose the touch emulation)
 */
async function shot(page: Page, name: string, docsName: string, viewport?: { width: number }): Promise<void> {
  if (viewport) {
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewportSize({ width: viewport.width, height });
  }
  const png = await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: !viewport });
  const docs = path.join(DOCS, docsName);
  if (!existsSync(docs) || process.env.UPDATE_SCREENSHOTS === '1') writeFileSync(docs, png);
  if (viewport) await page.setViewportSize({ width: viewport.width, height: 844 });
}
