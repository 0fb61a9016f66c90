import { Router } from 'express';
import {
  MIX_MAX_GAIN, OUTPUT_FORMATS, STEMS, FORMAT_INFO, DEFAULT_OUTPUT_FORMAT, decodeSource, isOutputFormat,
  type Extension, type OutputFormat, type Stem,
} from '@msaas/common';
import { DEFAULT_MP3, WAV_HEADER_BYTES, type Mp3Quality } from '@msaas/common/audio-encode/index';
import type { AppDeps } from '../deps.ts';
import { badRequest, notFound } from '../errors.ts';
import { tenantOf } from '../auth.ts';
import { songhashParam } from '../params.ts';
import { contentDisposition, downloadName, songFilename } from '../download-name.ts';
import { stemAccess, storedStems, type StemAccess } from '../servable.ts';
import { mixStems, stemSamples } from '../mix-sources.ts';
import { MixSlots } from '../mix-limits.ts';
import { clientKeyOf } from '../client-address.ts';
import { drained } from '../backpressure.ts';
import type { MixSpec } from '../mix-threads.ts';

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
 * reads, on a mix thread of their own (mix-threads.ts: the request thread only moves bytes, so
 * connections are accepted and /healthz and other requests served however many mixes run), and
 * every encoded byte goes out as the encoder makes it (the header first: the length is known from
 * the stems, so even an MP3's gapless Info tag leads — common/src/audio-encode). When the client
 * goes away the store streams are closed at once and the thread drops the mix.
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
    const left = new AbortController();
    const stop = (): void => left.abort();
    res.once('close', stop);
    const sources: MixSpec['sources'] = [];
    try {
      const { ext, stems, headers } = await prepare();
      // Between every step: a client that has gone costs no further store request, decoder or encoder.
      const total = await stemSamples(store, hash, stems[0]!, ext);
      if (total === null) throw notFound(missing);
      for (const t of stems.filter((t) => gains[t] > 0)) {
        if (left.signal.aborted) return;
        sources.push({ stream: await store.getStem(hash, t, undefined, ext), gain: gains[t] });
      }
      if (left.signal.aborted) return;
      if (format === 'wav') headers['Content-Length'] = String(WAV_HEADER_BYTES + total * 6);
      res.set(headers);
      /** Writes what the encoder made; false once the client has gone. */
      const write = async (bytes: Uint8Array[]): Promise<boolean> => {
        for (const b of bytes) {
          if (left.signal.aborted || res.destroyed) return false;
          if (!res.write(b) && !(await drained(res))) return false;
        }
        return !left.signal.aborted;
      };
      if (await deps.mixThreads.render({ ext, format, vbr, total, sources }, write, left.signal)) res.end();
    } catch (err) {
      // A read cut short by the client's leaving is not an error of ours.
      if (!left.signal.aborted) throw err;
    } finally {
      res.off('close', stop);
      admission.release();
      for (const s of sources) s.stream.destroy();
    }
  });

  return router;
}
