// The page shows what a song holds (headless Chromium, real rest, Redis and store; the song is
// separated through the queue's real transitions with test tones): a FLAC-only `vocals,instrumental`
// song shows both rows, each downloading `<song>-<stem>.flac` labelled FLAC with FLAC bytes; the
// status names its stems; the mix format starts at FLAC and the karaoke pair's mix downloads.
import { readFileSync } from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStemEncoder } from '@msaas/common/audio-encode/index';
import { chromiumProblem, launchChromium, pageServer, songBytes, tone, toneStems, RATE, type PageServer } from './helpers/page-under-test.ts';

const problem = chromiumProblem();
if (problem) console.warn(problem);

describe.skipIf(problem !== null)('the page follows the stems and format a song has (headless Chromium)', () => {
  let srv: PageServer;
  let browser: Browser;
  let hash: string;
  const errors: string[] = [];

  beforeAll(async () => {
    [srv, browser] = await Promise.all([pageServer('page-stems-follow'), launchChromium()]);
    const { queue, store } = srv.under.rest.deps;
    const song = await songBytes(2511);
    const res = await request(srv.under.rest.app)
      .post('/apiv1/separate')
      .set('X-Requested-With', 'XMLHttpRequest')
      .field('format', 'flac')
      .field('stems', 'vocals,instrumental')
      .attach('file', Buffer.from(song.bytes), 'Karaoke.mp3');
    expect(res.status).toBe(200);
    hash = res.body.hash;
    await srv.worker.claim(hash);
    for (const [stem, hz] of [['vocals', 440], ['instrumental', 220]] as const) {
      const enc = await createStemEncoder('flac', RATE, 2);
      enc.encode(tone(hz, 3, 0.3));
      await store.putStem(hash, stem, enc.finish(), 'flac');
    }
    expect(await queue.recordStems(srv.worker.id, hash, ['vocals', 'instrumental'])).toBe('owned');
    await srv.worker.complete(hash, 3);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  /** A page at `path` in a fresh context, its errors collected, once the page is ready. */
  async function fresh(path: string, opts: Parameters<Browser['newContext']>[0] = {}): Promise<{ page: Page; context: BrowserContext }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, ...opts });
    const page = await context.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${srv.url}${path}`);
    await page.waitForSelector('body[data-ready="true"]');
    return { page, context };
  }

  it('a FLAC-only vocals,instrumental song: both rows, each stem downloads as .flac labelled FLAC with FLAC bytes, the mix starts at FLAC and downloads', async () => {
    const { page, context } = await fresh(`/#${hash}`);
    await page.waitForSelector('#player[data-state="paused"]', { timeout: 20_000 });

    expect(await page.$$eval('li.stem', (rows) => rows.map((r) => (r as HTMLElement).dataset.track))).toEqual(['vocals', 'instrumental']);
    await expect(page.textContent('#job-text')).resolves.toBe('Done — the vocals and instrumental stems are ready.');
    for (const stem of ['vocals', 'instrumental']) {
      const link = `li.stem[data-track="${stem}"] a.download`;
      const label = stem[0]!.toUpperCase() + stem.slice(1);
      await expect(page.getAttribute(link, 'aria-label')).resolves.toBe(`Download ${label} (FLAC)`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
      expect(download.suggestedFilename()).toBe(`Karaoke-${stem}.flac`);
      expect(readFileSync(await download.path()).toString('latin1', 0, 4)).toBe('fLaC');
    }

    // the formats come from /apiv1/info; the mix starts at the song's own format
    expect(await page.$$eval('#mix-format option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['mp3', 'mp3-320', 'wav', 'flac']);
    expect(await page.$$eval('#upload-format option', (o) => o.map((x) => (x as HTMLOptionElement).value))).toEqual(['mp3', 'mp3-320', 'wav', 'flac']);
    await expect(page.inputValue('#mix-format')).resolves.toBe('flac');
    await page.waitForFunction(() => /vocals=1&instrumental=1&format=flac$/.test(document.querySelector('#download-mix')?.getAttribute('href') ?? ''));
    await expect(page.getAttribute('#download-mix', 'download')).resolves.toBe('Karaoke-mix.flac');
    const [mix] = await Promise.all([page.waitForEvent('download'), page.click('#download-mix')]);
    expect(mix.suggestedFilename()).toBe('Karaoke-mix.flac');
    const mixBytes = readFileSync(await mix.path());
    expect(mixBytes.toString('latin1', 0, 4)).toBe('fLaC');
    expect(mixBytes.length).toBeGreaterThan(10_000);

    await page.selectOption('#mix-format', 'mp3');
    await page.waitForFunction(() => document.querySelector('#download-mix')?.getAttribute('href')?.endsWith('format=mp3'));
    await expect(page.getAttribute('#download-mix', 'download')).resolves.toBe('Karaoke-mix.mp3');
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it('while a finished MP3 song is run again for FLAC, a fresh page plays its four MP3 stems and downloads them; they stay when the run ends', async () => {
    const song = await songBytes(2521);
    const mp3Hash = await srv.submit('Rerun.mp3', song.bytes);
    await srv.separate(mp3Hash, await toneStems(3));
    const rerun = await request(srv.under.rest.app).post('/apiv1/separate').set('X-Requested-With', 'XMLHttpRequest').field('format', 'flac').attach('file', Buffer.from(song.bytes), 'Rerun.mp3');
    expect(rerun.body.result).toBe('enqueued');

    const { page, context } = await fresh(`/#${mp3Hash}`);
    await page.waitForSelector('#player[data-state="paused"]', { timeout: 20_000 });
    expect(await page.$$eval('li.stem', (rows) => rows.map((r) => (r as HTMLElement).dataset.track))).toEqual(['drums', 'bass', 'other', 'vocals']);
    await expect(page.textContent('#job-text')).resolves.toMatch(/queue|Next in line/);
    await expect(page.getAttribute('li.stem[data-track="drums"] a.download', 'aria-label')).resolves.toBe('Download Drums (MP3)');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('li.stem[data-track="drums"] a.download')]);
    expect(download.suggestedFilename()).toBe('Rerun-drums.mp3');
    expect(readFileSync(await download.path()).length).toBeGreaterThan(1000);
    await page.evaluate(() => (window as unknown as { msaasPlayer: { play: () => Promise<void> } }).msaasPlayer.play());
    await page.waitForFunction(() => (window as unknown as { msaasPlayer: { currentTime: number } }).msaasPlayer.currentTime > 0.2);

    // the FLAC run ends: the rows stay, their links still answer
    const { queue, store } = srv.under.rest.deps;
    await srv.worker.claim(mp3Hash);
    for (const stem of ['drums', 'bass', 'other', 'vocals'] as const) {
      const enc = await createStemEncoder('flac', RATE, 2);
      enc.encode(tone(220, 3, 0.2));
      await store.putStem(mp3Hash, stem, enc.finish(), 'flac');
    }
    expect(await queue.recordStems(srv.worker.id, mp3Hash, ['drums', 'bass', 'other', 'vocals'])).toBe('owned');
    await srv.worker.complete(mp3Hash, 3);
    await page.waitForFunction(() => /^Done/.test(document.querySelector('#job-text')?.textContent ?? ''), undefined, { timeout: 20_000 });
    expect(await page.$$eval('li.stem', (rows) => rows.length)).toBe(4);
    const href = await page.getAttribute('li.stem[data-track="vocals"] a.download', 'href');
    expect(await page.evaluate(async (url) => (await fetch(url!)).status, href)).toBe(200);
    expect(errors).toEqual([]);
    await context.close();
  }, 60_000);

  it("the mixer's views (stem row, practice controls, keys, downloads) stop answering once destroyed, and a destroyed row leaves the page", async () => {
    // bypassCSP: the test imports the page's modules from its own code (new Function), which the page's CSP forbids
    const { page, context } = await fresh('/', { bypassCSP: true });
    const outcome = await page.evaluate(async () => {
      const calls: string[] = [];
      const note = (what: string) => () => void calls.push(what);
      const fire = (target: EventTarget, event: Event) => target.dispatchEvent(event);
      // the page's own modules, as the browser loads them (an import() vitest would otherwise rewrite)
      const load = new Function('path', 'return import(path)') as (path: string) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const { StemRow } = await load('/stem-row.js');
      const { PracticeControls } = await load('/practice.js');
      const { playerKeys } = await load('/keyboard.js');
      const { SongDownloads } = await load('/downloads.js');
      const template = document.getElementById('stem-row') as HTMLTemplateElement;
      const row = new StemRow(template, 'vocals', '#fff', {
        volume: note('volume'), mute: note('mute'), solo: note('solo'), duration: () => 10, drag: note('drag'), select: note('select'),
        seek: note('seek'), say: note('say'), remove: async () => void calls.push('remove'),
      });
      document.body.append(row.row);
      row.enable(true);
      const vol = row.row.querySelector('.vol-input') as HTMLInputElement;
      const mute = row.row.querySelector('.mute') as HTMLButtonElement;
      const fakePlayer = {
        currentTime: 1, duration: 10, playing: false, tempo: 1, pitch: 0, masterVolume: 1, loop: null, shiftError: null,
        setTempo: async () => void calls.push('tempo'), setPitch: async () => undefined, setMasterVolume: note('master'), setLoop: note('loop'),
        play: async () => void calls.push('play'), pause: note('pause'), seek: note('seek-key'),
      };
      const make = <K extends keyof HTMLElementTagNameMap>(tag: K) => document.createElement(tag);
      const practiceEl = {
        tempo: make('input'), tempoOut: make('output'), pitch: make('input'), pitchOut: make('output'), master: make('input'), masterOut: make('output'),
        loopA: make('button'), loopB: make('button'), loopToggle: make('button'), loopText: make('span'), practiceReset: make('button'),
      };
      const practice = new PracticeControls(practiceEl, fakePlayer as never, { say: note('say'), changed: note('changed') });
      const keysEl = { play: make('button'), seek: make('input'), player: make('section') };
      const keys = playerKeys(keysEl, fakePlayer as never);
      const dlEl = { downloadAll: make('a'), downloadMix: make('a'), mixFormat: make('select') };
      const downloads = new SongDownloads(dlEl, note('say'), note('format'));
      const poke = () => {
        fire(vol, new Event('input'));
        mute.click();
        fire(practiceEl.tempo, new Event('input'));
        practiceEl.loopA.click();
        fire(document, new KeyboardEvent('keydown', { key: ' ', bubbles: true }));
        fire(keysEl.seek, new KeyboardEvent('keydown', { key: 'ArrowRight' }));
        fire(dlEl.mixFormat, new Event('change'));
      };
      poke();
      const before = [...calls].sort();
      calls.length = 0;
      row.destroy();
      practice.destroy();
      keys.destroy();
      downloads.destroy();
      poke();
      return { before, after: calls, attached: row.row.isConnected };
    });
    expect(outcome.before).toEqual(['changed', 'format', 'loop', 'mute', 'play', 'seek-key', 'tempo', 'volume']);
    expect(outcome.after).toEqual([]);
    expect(outcome.attached).toBe(false);
    expect(errors).toEqual([]);
    await context.close();
  }, 30_000);
});
