import { Router } from 'express';
import {
  MIX_MAX_GAIN, OUTPUT_FORMATS, TRACKS, FORMAT_INFO, DEFAULT_OUTPUT_FORMAT, isOutputFormat,
  type Extension, type OutputFormat, type Track,
} from '@msaas/common';
import { createFlacStreamEncoder, createMp3StreamEncoder, wavFrames, wavHeader } from '@msaas/common/audio-encode/index';
import type { AppDeps } from '../deps.ts';
import { badRequest, notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../downloadName.ts';
import { hasExtension, stemAccess, type StemAccess } from '../servable.ts';
import { decodeStem, stemSamples, StemPuller, type Stereo } from '../mixSources.ts';
import { drained } from '../backpressure.ts';

const SAMPLE_RATE = 44_100;
/** Samples per channel mixed and encoded at a time (1 s). */
const BLOCK = 44_100;
const GAIN_RE = /^(\d+(\.\d*)?|\.\d+)$/;

/** `drums`, `bass`, `other`, `vocals`: each 0..2, default 1. */
export function parseGains(query: Record<string, unknown>): Record<Track, number> {
  const gains = {} as Record<Track, number>;
  for (const t of TRACKS) {
    const raw = query[t];
    if (raw === undefined || raw === '') {
      gains[t] = 1;
      continue;
    }
    const g = typeof raw === 'string' && GAIN_RE.test(raw) ? Number(raw) : NaN;
    if (!(g >= 0 && g <= MIX_MAX_GAIN)) throw badRequest('bad_request', `${t} must be a gain from 0 to ${MIX_MAX_GAIN} (got ${String(raw).slice(0, 20)})`);
    gains[t] = g;
  }
  return gains;
}

/** The stored copy the mix decodes: lossless when the song has it. */
function sourceExtension(access: StemAccess): Extension {
  for (const ext of ['flac', 'wav'] as const) if (access.kind === 'claim' && hasExtension(access, ext)) return ext;
  return 'mp3';
}

/**
 * `GET /apiv1/jobs/:songhash/mix?drums=&bass=&other=&vocals=&format=`: the four model stems
 * summed with those gains (0..2, default 1), as a download in `format` (default mp3). The stored
 * stems are decoded and mixed one second at a time, as fast as the client reads: WAV and FLAC
 * stream as they are made; an MP3 is sent once encoded (its Info tag, which makes it gapless,
 * needs the frame count), so memory holds at most the compressed mix, never the song's PCM.
 */
export function mixRouter(deps: AppDeps): Router {
  const { store } = deps;
  const router = Router();

  router.get('/apiv1/jobs/:songhash/mix', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const query = req.query as Record<string, unknown>;
    const gains = parseGains(query);
    const rawFormat = query.format;
    if (rawFormat !== undefined && (typeof rawFormat !== 'string' || !isOutputFormat(rawFormat))) {
      throw badRequest('bad_request', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
    }
    const format: OutputFormat = rawFormat ?? DEFAULT_OUTPUT_FORMAT;
    const missing = `no stems for ${hash} (not separated yet, or removed)`;
    const access = await stemAccess(deps, tenantOf(res), hash, missing);
    const ext = sourceExtension(access);
    for (const t of TRACKS) {
      if (access.kind === 'claim' && !access.visible.includes(t)) throw notFound(`the ${t} stem of ${hash} was removed; a mix needs all four model stems`);
    }
    const total = await stemSamples(store, hash, 'vocals', ext);
    if (total === null) throw notFound(missing);

    const active = TRACKS.filter((t) => gains[t] > 0);
    const pullers: StemPuller[] = [];
    try {
      for (const t of active) pullers.push(new StemPuller(decodeStem(await store.getStem(hash, t, undefined, ext), ext)[Symbol.asyncIterator](), gains[t]));
      const name = downloadName(await songFilename(deps.queue, hash, tenantOf(res).id), hash, 'mix', FORMAT_INFO[format].ext);
      res.set({ 'Content-Type': FORMAT_INFO[format].contentType, 'Content-Disposition': contentDisposition('attachment', name), 'Cache-Control': 'no-store' });

      const send = async (bytes: Uint8Array): Promise<boolean> => {
        if (res.destroyed) return false;
        if (bytes.length > 0 && !res.write(bytes)) return drained(res);
        return true;
      };
      let pendingWrite: Uint8Array[] = [];
      let encode: (mix: Stereo) => void;
      let finish: () => Uint8Array;
      if (format === 'wav') {
        res.set('Content-Length', String(44 + total * 6));
        pendingWrite.push(wavHeader(SAMPLE_RATE, 2, total));
        encode = (mix) => void pendingWrite.push(wavFrames(mix));
        finish = () => new Uint8Array(0);
      } else if (format === 'flac') {
        const enc = createFlacStreamEncoder(SAMPLE_RATE, 2, { totalSamples: total, onBytes: (b) => void pendingWrite.push(b.slice()) });
        encode = (mix) => enc.encode(mix);
        finish = () => enc.finish();
      } else {
        const enc = await createMp3StreamEncoder(SAMPLE_RATE, 2, format === 'mp3-320' ? { bitrate: 320 } : { vbrQuality: 2 });
        encode = (mix) => enc.encode(mix);
        finish = () => enc.finish();
      }

      const mix: Stereo = [new Float32Array(BLOCK), new Float32Array(BLOCK)];
      for (let done = 0; done < total; ) {
        const n = Math.min(BLOCK, total - done);
        mix[0].fill(0);
        mix[1].fill(0);
        for (const p of pullers) await p.addInto(mix, n);
        encode([mix[0].subarray(0, n), mix[1].subarray(0, n)]);
        done += n;
        const out = pendingWrite;
        pendingWrite = [];
        for (const b of out) if (!(await send(b))) return;
      }
      const tail = finish();
      for (const b of [...pendingWrite, tail]) if (!(await send(b))) return;
      res.end();
    } finally {
      await Promise.all(pullers.map((p) => p.close().catch(() => undefined)));
    }
  });

  return router;
}
