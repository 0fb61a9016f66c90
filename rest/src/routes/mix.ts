import { Router } from 'express';
import {
  MIX_MAX_GAIN, OUTPUT_FORMATS, STEMS, FORMAT_INFO, DEFAULT_OUTPUT_FORMAT, decodeSource, isOutputFormat,
  type Extension, type OutputFormat, type Stem,
} from '@msaas/common';
import { setImmediate } from 'node:timers/promises';
import { createStemEncoder, DEFAULT_MP3, WAV_HEADER_BYTES, type Mp3Quality } from '@msaas/common/audio-encode/index';
import type { AppDeps } from '../deps.ts';
import { badRequest, notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../download-name.ts';
import { stemAccess, storedStems, type StemAccess } from '../servable.ts';
import { mixStems, stemSamples, StemPuller, type Stereo } from '../mix-sources.ts';
import { MixSlots } from '../mix-limits.ts';
import { clientKeyOf } from '../client-address.ts';
import { drained } from '../backpressure.ts';

const SAMPLE_RATE = 44_100;
/**
 * Samples per channel mixed and encoded at a time (0.25 s): one block of an MP3 mix is ~10 ms of
 * CPU here, so the event loop is back for other requests within that per running mix.
 */
const BLOCK = 11_025;
const GAIN_RE = /^(\d+(\.\d*)?|\.\d+)$/;

/** A gain per stem (`drums`, `bass`, `other`, `vocals`, `instrumental`): each 0..2, default 1. */
export function parseGains(query: Record<string, unknown>): Record<Stem, number> {
  const gains = {} as Record<Stem, number>;
  for (const t of STEMS) {
    const raw = query[t];
    if (raw === undefined || raw === '') {
      gains[t] = 1;
      continue;
    }
    const g = typeof raw === 'string' && GAIN_RE.test(raw) ? Number(raw) : NaN;
    if (!(g >= 0 && g <= MIX_MAX_GAIN)) throw badRequest('bad_gain', `${t} must be a gain from 0 to ${MIX_MAX_GAIN} (got ${String(raw).slice(0, 20)})`);
    gains[t] = g;
  }
  return gains;
}

/** The stored copy the mix decodes: lossless when the song has it (decodeSource), else MP3 (the store alone: the lab's copy). */
function sourceExtension(access: StemAccess): Extension {
  return (access.kind === 'claim' ? decodeSource(access.formats) : null) ?? 'mp3';
}

/** The LAME setting of the stems (MP3_VBR_QUALITY, else the encoders' default): a mix sounds like the stems it is made of. */
function mp3Quality(config: AppDeps['config']): Mp3Quality {
  return config.MP3_VBR_QUALITY !== undefined ? { vbrQuality: config.MP3_VBR_QUALITY } : DEFAULT_MP3;
}

/**
 * `GET /apiv1/jobs/:songhash/mix?drums=&bass=&other=&vocals=&instrumental=&format=`: the stems the
 * song has (mix-sources.ts mixStems: the four model stems, or e.g. vocals + instrumental) summed with
 * those gains (0..2, default 1), as a download in `format` (default DEFAULT_OUTPUT_FORMAT).
 *
 * What one request may cost is bounded before any stem is read: a mix takes one of the process's
 * MAX_CONCURRENT_MIXES slots and one of its client's MIXES_PER_CLIENT (mix-limits.ts). The stored
 * stems are then decoded, mixed and encoded a quarter second at a time, as fast as the client
 * reads, and every encoded byte goes out as the encoder makes it (the header first: the length is
 * known from the stems, so even an MP3's gapless Info tag leads — common/src/audio-encode). Each
 * block yields to the event loop, so /healthz and other requests are served between blocks; when
 * the client goes away the store streams are closed at once and the encoder dropped.
 */
export function mixRouter(deps: AppDeps): Router {
  const { store, config } = deps;
  const slots = new MixSlots({ perProcess: config.MAX_CONCURRENT_MIXES, perClient: config.MIXES_PER_CLIENT });
  const vbr = mp3Quality(config);
  const router = Router();

  router.get('/apiv1/jobs/:songhash/mix', async (req, res) => {
    const hash = songhashParam(req.params.songhash);
    const query = req.query as Record<string, unknown>;
    const gains = parseGains(query);
    const rawFormat = query.format;
    if (rawFormat !== undefined && (typeof rawFormat !== 'string' || !isOutputFormat(rawFormat))) {
      throw badRequest('bad_format', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
    }
    const format: OutputFormat = rawFormat ?? DEFAULT_OUTPUT_FORMAT;
    const tenant = tenantOf(res);
    const missing = `no stems for ${hash} (not separated yet, or removed)`;
    /**
     * What a mix of this song reads (its stored stems' extension, the stems it has: mixStems) and
     * answers with (headers); 404 when it has no stem to mix.
     */
    const prepare = async (): Promise<{ ext: Extension; stems: Stem[]; headers: Record<string, string> }> => {
      const access = await stemAccess(deps, tenant, hash, missing);
      const ext = sourceExtension(access);
      const stems = mixStems(access.kind === 'claim' ? access.visible : await storedStems(deps, hash, access, ext));
      if (stems.length === 0) throw notFound(missing);
      const name = downloadName(await songFilename(deps.queue, hash, tenant.id), hash, 'mix', FORMAT_INFO[format].ext);
      return { ext, stems, headers: { 'Content-Type': FORMAT_INFO[format].contentType, 'Content-Disposition': contentDisposition('attachment', name), 'Cache-Control': 'no-store' } };
    };
    if (req.method === 'HEAD') {
      // Headers only: nothing is mixed for an answer without a body, and no slot is taken.
      return void res.set((await prepare()).headers).end();
    }

    // The slot first: a refused mix costs nothing beyond its query's parse.
    const authenticated = res.locals.authenticated === true;
    const admission = slots.admit(authenticated ? `tenant:${tenant.id}` : `address:${clientKeyOf(req, res)}`, authenticated);
    if (!admission.ok) throw admission.error;
    const pullers: StemPuller[] = [];
    let gone = false;
    const stop = (): void => {
      gone = true;
      for (const p of pullers) p.destroy();
    };
    res.once('close', stop);
    try {
      const { ext, stems, headers } = await prepare();
      // Between every step: a client that has gone costs no further store request, decoder or encoder.
      const total = await stemSamples(store, hash, stems[0]!, ext);
      if (total === null) throw notFound(missing);
      for (const t of stems.filter((t) => gains[t] > 0)) {
        if (gone) return;
        const stream = await store.getStem(hash, t, undefined, ext);
        pullers.push(new StemPuller(stream, ext, gains[t]));
      }
      if (gone) return;

      let pending: Uint8Array[] = [];
      // The encoder's bytes are its own until its next call: copied as they are queued for the socket.
      const encoder = await createStemEncoder(format, SAMPLE_RATE, 2, vbr, { totalSamples: total, onBytes: (b) => void pending.push(b.slice()) });
      if (gone) return;
      if (format === 'wav') headers['Content-Length'] = String(WAV_HEADER_BYTES + total * 6);
      res.set(headers);
      /** Writes what the encoder made; false once the client has gone. */
      const flush = async (): Promise<boolean> => {
        const out = pending;
        pending = [];
        for (const b of out) {
          if (gone || res.destroyed) return false;
          if (!res.write(b) && !(await drained(res))) return false;
        }
        return !gone;
      };

      const mix: Stereo = [new Float32Array(BLOCK), new Float32Array(BLOCK)];
      for (let done = 0; done < total; ) {
        const n = Math.min(BLOCK, total - done);
        mix[0].fill(0);
        mix[1].fill(0);
        for (const p of pullers) await p.addInto(mix, n);
        if (gone) return;
        encoder.encode([mix[0].subarray(0, n), mix[1].subarray(0, n)]);
        done += n;
        if (!(await flush())) return;
        // Let the event loop serve others (health checks, other requests, socket closes) between blocks.
        await setImmediate();
        if (gone) return;
      }
      encoder.finish();
      if (!(await flush())) return;
      res.end();
    } catch (err) {
      // A read cut short by the client's leaving is not an error of ours.
      if (!gone) throw err;
    } finally {
      res.off('close', stop);
      admission.release();
      await Promise.all(pullers.map((p) => p.close()));
    }
  });

  return router;
}
