/**
 * Issue 24 item 1: a streamed upload's length, learnt from the bytes as they pass (rest/src/ingest/
 * probe.ts), is the length the whole-file parsers give (common/src/audio-format.ts) — for every
 * input format, fed in uneven chunks, with the whole-file shortcut off so the streaming paths run.
 */
import { describe, expect, it } from 'vitest';
import { AudioInputError, probeAudio, scanMp3, sniffAudioFormat } from '@msaas/common';
import { HEAD_BYTES, StreamProbe, headWindow } from '../src/ingest/probe.ts';
import { synthesizeMp3, synthesizeSong } from '../../worker/fixtures/synth.ts';
import { encodeAs, encodeWav, type FixtureFormat } from '../../worker/fixtures/encode-formats.ts';

/** Feeds `bytes` to a streaming probe as rest's ingest does: the head window, then chunks of varying size. */
function streamedSeconds(bytes: Uint8Array, seed = 1): number {
  const head = bytes.subarray(0, Math.min(headWindow(bytes), bytes.length));
  const sniffed = sniffAudioFormat(head);
  if (sniffed.format === null) throw new Error(`not audio: ${sniffed.found}`);
  const probe = new StreamProbe(head, sniffed.format, 0);
  let at = head.length;
  let x = seed;
  while (at < bytes.length) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % 70_000);
    probe.feed(bytes.subarray(at, at + n));
    at += n;
  }
  return probe.seconds(bytes.length);
}

describe('streamed length probe', () => {
  it('an MP3 (with an ID3 tag and its Info frame) streamed in uneven chunks has the frame scan\'s length', async () => {
    const mp3 = await synthesizeMp3({ seconds: 40, seed: 3 });
    const tag = new Uint8Array(10 + 300_000);
    tag.set([0x49, 0x44, 0x33, 4, 0, 0]);
    const size = tag.length - 10;
    tag.set([(size >> 21) & 0x7f, (size >> 14) & 0x7f, (size >> 7) & 0x7f, size & 0x7f], 6);
    for (const bytes of [mp3, Buffer.concat([tag, mp3])]) {
      const whole = scanMp3(bytes).durationSec;
      for (const seed of [1, 2, 3]) expect(streamedSeconds(bytes, seed)).toBeCloseTo(whole, 6);
    }
  }, 60_000);

  it.each(['wav16', 'wav24', 'wavf32', 'flac', 'ogg-vorbis', 'ogg-opus', 'm4a'] as FixtureFormat[])('a %s streamed in uneven chunks has the whole-file parser\'s length', async (format) => {
    const bytes = await encodeAs(format, synthesizeSong({ seconds: 12, seed: 9 }), 44100);
    const whole = probeAudio(bytes).durationSec!;
    expect(whole).toBeGreaterThan(11);
    expect(streamedSeconds(bytes, 7)).toBeCloseTo(whole, 6);
  }, 60_000);

  it('a WAV states its length from the header before its body, and a WAV cut short is refused at the end as the whole-file parser refuses it', () => {
    const wav = encodeWav([new Float32Array(44100 * 20), new Float32Array(44100 * 20)], 44100, { bits: 16 });
    const probe = new StreamProbe(wav.subarray(0, HEAD_BYTES), 'wav', 0);
    expect(probe.headerSeconds).toBeCloseTo(20, 6);
    const cut = wav.subarray(0, wav.length - 1000);
    expect(() => probeAudio(cut)).toThrow(/truncated/);
    expect(() => streamedSeconds(cut)).toThrow(AudioInputError);
    expect(() => streamedSeconds(cut)).toThrow(/the WAV is truncated: its data chunk promises \d+ bytes, the file holds \d+/);
  });
});
