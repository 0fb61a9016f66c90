// The live stream end to end with real processes: rest and a real worker (the stand-in model:
// the whole pipeline — decode, STFT, chunks, pieces, uploads — with an inference of milliseconds)
// on real Redis and an S3 server. The live vocals stream is opened right after the submit answers.
import { MPEGDecoder } from 'mpg123-decoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { songhash, type JobView } from '@msaas/common';
import { synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { sdr } from '../../worker/fixtures/sdr.ts';
import { printLinesOnFailure, startStack, type Stack } from '../../test/helpers/stack.ts';
import { standinModelPath } from '../../test/helpers/standin-model.ts';

const RATE = 44_100;
const MP3_FRAME = 1152;

let stack: Stack;
printLinesOnFailure(() => stack?.lines);

beforeAll(async () => {
  stack = await startStack({ env: { MODEL_PATH: standinModelPath(), RATE_LIMIT_PER_MIN: '100000', SUBMIT_RATE_LIMIT_PER_MIN: '100000' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
}, 60_000);

type Stereo = [Float32Array, Float32Array];

async function decodeMp3(bytes: Uint8Array): Promise<Stereo> {
  const decoder = new MPEGDecoder({ enableGapless: true });
  await decoder.ready;
  try {
    const out = decoder.decode(bytes);
    return [out.channelData[0]!.slice(), (out.channelData[1] ?? out.channelData[0]!).slice()];
  } finally {
    decoder.free();
  }
}

/** The live stream's offset against the finished stem (0 with the Info tag, the codecs' delay without) and its SDR there. */
function aligned(live: Stereo, finished: Stereo): { shift: number; db: number; length: number } {
  const span = Math.min(3 * RATE, finished[0].length);
  let shift = 0;
  let best = -Infinity;
  for (let s = 0; s <= 2 * MP3_FRAME; s++) {
    const db = sdr([finished[0].subarray(0, span)], [live[0].subarray(s, s + span)]).db;
    if (db > best) [shift, best] = [s, db];
  }
  const est: Stereo = [live[0].subarray(shift), live[1].subarray(shift)];
  return { shift, db: sdr(finished, est).db, length: est[0].length };
}

describe('live stream with a real worker (stand-in model)', () => {
  it('the live vocals stream opened after the submit has audio before the job is done, ends with it, and decodes to the finished stem (≥ 25 dB, length ±1 frame)', async () => {
    const mp3 = await synthesizeMp3({ seconds: 45, seed: 21 });
    const hash = songhash(mp3);
    const views: JobView[] = [];
    const submitted = Date.now();
    await stack.api.submit(mp3);
    const following = stack.api.follow(hash, { via: 'events', timeoutMs: 180_000, onChange: (j) => void views.push(j) });
    const res = await fetch(`${stack.url}/apiv1/jobs/${hash}/live/vocals.mp3`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('audio/mpeg');
    const chunks: Uint8Array[] = [];
    let firstAt: number | null = null;
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      firstAt ??= Date.now();
      chunks.push(value);
    }
    const done = await following;
    expect(done.state).toBe('done');
    const doneAt = Date.parse(done.finishedAt!);
    const live = await decodeMp3(Buffer.concat(chunks));
    const finished = await decodeMp3((await stack.api.stem(hash, 'vocals')).bytes);
    const c = aligned(live, finished);
    const running = views.filter((v) => v.state === 'processing' && v.live !== null);
    process.stdout.write(
      `[live e2e] 45 s song: first live audio ${firstAt! - submitted} ms after the submit, job done ${doneAt - submitted} ms after it; ` +
        `${running.length} events with pieces (readySec ${running.map((v) => v.readySec.toFixed(1)).join(', ')}); ` +
        `live ${live[0].length} frames (offset ${c.shift}) vs finished ${finished[0].length}; SDR ${c.db.toFixed(1)} dB\n`,
    );
    expect(firstAt!).toBeLessThan(doneAt);
    expect(running.length).toBeGreaterThan(0);
    expect(c.db).toBeGreaterThanOrEqual(25);
    expect(Math.abs(c.length - finished[0].length)).toBeLessThanOrEqual(MP3_FRAME);
    expect(done).toMatchObject({ readySec: done.durationSec, live: null });
    expect(done.durationSec).toBeCloseTo(finished[0].length / RATE, 1);
  }, 240_000);
});
