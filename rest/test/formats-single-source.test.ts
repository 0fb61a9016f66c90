import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { Redis } from 'ioredis';
import {
  DEFAULT_OUTPUT_FORMAT, DEFAULT_STEMS, EXTENSIONS, FORMAT_INFO, OUTPUT_FORMATS, contentTypeOf, extensionOf, formatCovers, mergeFormats, type OutputFormat,
} from '@msaas/common';
import { createStemEncoder } from '@msaas/common/audio-encode/index';
import { luaPrelude } from '../../common/src/queue/lua-prelude.ts';
import { restUnderTest, type RestUnderTest } from './helpers/rest-under-test.ts';

// Output formats are defined once (FORMAT_INFO, common/src/formats.ts); the API, the encoders, the
// queue scripts and the page derive from it.

let under: RestUnderTest;
let redis: Redis;

beforeAll(async () => {
  under = await restUnderTest('formats-single-source');
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
});

afterAll(async () => {
  redis?.disconnect();
  await under?.close();
});

const songsLua = readFileSync(new URL('../../common/src/queue/lua/lib/songs.lua', import.meta.url), 'utf8');
/** Runs a Lua expression with the generated table and lib/songs.lua in scope (real Redis). */
const lua = async (expr: string): Promise<unknown> => redis.eval(`${luaPrelude()}${songsLua}\nreturn ${expr}`, 0);

describe('output formats come from FORMAT_INFO', () => {
  it('/apiv1/info lists every format with its extension, content type and labels, and the defaults', async () => {
    const info = (await request(under.rest.app).get('/apiv1/info')).body;
    expect(info.outputFormats).toEqual(Object.keys(FORMAT_INFO));
    expect(info.defaultFormat).toBe(DEFAULT_OUTPUT_FORMAT);
    expect(info.defaultStems).toEqual([...DEFAULT_STEMS]);
    expect(info.formats).toEqual(
      OUTPUT_FORMATS.map((name) => ({ name, ext: FORMAT_INFO[name].ext, contentType: FORMAT_INFO[name].contentType, label: FORMAT_INFO[name].label, short: FORMAT_INFO[name].short })),
    );
  });

  it("a stored file's content type is its format's (contentTypeOf derives from the table)", () => {
    for (const f of OUTPUT_FORMATS) expect(contentTypeOf(extensionOf(f))).toBe(FORMAT_INFO[f].contentType);
    expect(EXTENSIONS).toEqual(['mp3', 'wav', 'flac']);
  });

  it('the queue scripts cover, extension and merge rules agree with formatCovers and mergeFormats for every pair (real Redis)', async () => {
    for (const have of OUTPUT_FORMATS) {
      expect(await lua(`ext_of('${have}')`)).toBe(FORMAT_INFO[have].ext);
      for (const want of OUTPUT_FORMATS) {
        expect(await lua(`format_covers('${have}', '${want}') and 1 or 0`), `${have} covers ${want}`).toBe(formatCovers(have, want) ? 1 : 0);
        expect(await lua(`merge_format('${have}', '${want}')`), `${have} + ${want}`).toBe(mergeFormats([have], want).join(','));
      }
    }
    expect(formatCovers('mp3-320', 'mp3')).toBe(true);
    expect(formatCovers('mp3', 'mp3-320')).toBe(false);
    expect(await lua('DEFAULT_FORMAT')).toBe(DEFAULT_OUTPUT_FORMAT);
    expect(await lua('DEFAULT_STEMS')).toBe(DEFAULT_STEMS.join(','));
  });

  it('no other place lists the formats: the page reads them from /apiv1/info, the queue scripts from the generated table', () => {
    const read = (path: string): string => readFileSync(new URL(path, import.meta.url), 'utf8').replace(/^\s*(--|\/\/|\*).*$/gm, '');
    for (const page of ['../public/index.html', '../public/mixer.js', '../public/downloads.js', '../public/formats.js', '../public/upload.js']) {
      const text = read(page);
      expect(text, page).not.toMatch(/<option value="(mp3|wav|flac)/);
      expect(text, page).not.toMatch(/['"]mp3-320['"]|\bFORMAT_EXT\b/);
    }
    for (const script of ['../../common/src/queue/lua/lib/songs.lua', '../../common/src/queue/lua/submit-12.lua', '../../common/src/queue/lua/complete-6.lua']) {
      expect(read(script), script).not.toMatch(/'(mp3|mp3-320|wav|flac)'|'drums,bass,other,vocals'/);
    }
  });

  it("each format's encoder writes that format's bytes, and only VBR MP3 takes the configured quality", async () => {
    const tone = new Float32Array(44_100).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 44_100));
    const encode = async (f: OutputFormat, vbrQuality: number): Promise<Buffer> => {
      const enc = await createStemEncoder(f, 44_100, 2, { vbrQuality });
      enc.encode([tone, tone]);
      return Buffer.from(enc.finish());
    };
    const magic: Record<string, (b: Buffer) => boolean> = {
      mp3: (b) => b[0] === 0xff && (b[1]! & 0xe0) === 0xe0,
      wav: (b) => b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE',
      flac: (b) => b.toString('latin1', 0, 4) === 'fLaC',
    };
    for (const f of OUTPUT_FORMATS) expect(magic[FORMAT_INFO[f].ext]!(await encode(f, 2)), f).toBe(true);
    // VBR quality 0 and 9 differ in size; CBR 320 is the same whatever the VBR setting
    expect((await encode('mp3', 0)).length).toBeGreaterThan((await encode('mp3', 9)).length * 1.5);
    expect((await encode('mp3-320', 0)).length).toBe((await encode('mp3-320', 9)).length);
  });
});
