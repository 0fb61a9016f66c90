import { describe, it, expect, beforeAll } from 'vitest';
import { decodeMp3, encodeMp3, AudioInputError, scanMp3 } from '../src/separation/index.ts';
import { parseFrameHeader } from '@msaas/common';
import { LAME_ENCODER_DELAY, crc16 } from '@msaas/common/audio-encode/mp3-info-tag';
import { synthesizeMp3, synthesizeSong } from '../fixtures/synth.ts';
import { bestLag, snrAligned, id3v2Tag, id3v1Tag, concat, rms, sameSamples, peakIndex } from './helpers/audio.ts';

async function expectAudioError(p: Promise<unknown>, code: AudioInputError['code']): Promise<AudioInputError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AudioInputError);
  expect((err as AudioInputError).code).toBe(code);
  expect((err as AudioInputError).message.length).toBeGreaterThan(5);
  return err as AudioInputError;
}

describe('decodeMp3', () => {
  let stereo44: Uint8Array;
  beforeAll(async () => {
    stereo44 = await synthesizeMp3({ seconds: 4, seed: 3 });
  });

  it('round-trips a generated 44.1 kHz stereo MP3', async () => {
    const original = synthesizeSong({ seconds: 4, seed: 3 });
    const decoded = await decodeMp3(stereo44);
    expect(decoded.sampleRate).toBe(44100);
    // Gapless: the Info tag's delay and padding give back exactly the encoded samples, in place.
    expect(decoded.channels[0].length).toBe(original[0].length);
    for (let c = 0; c < 2; c++) {
      expect(bestLag(original[c], decoded.channels[c], 2400)).toBe(0);
      expect(snrAligned(original[c], decoded.channels[c], 0)).toBeGreaterThan(15);
    }
  });

  it('duplicates a mono MP3 to two equal channels', async () => {
    const mono = await synthesizeMp3({ seconds: 2, stereo: false });
    expect(scanMp3(mono).channels).toBe(1);
    const d = await decodeMp3(mono);
    expect(sameSamples(d.channels[0], d.channels[1])).toBe(true);
    expect(rms(d.channels[0])).toBeGreaterThan(0.05);
  });

  it.each([48000, 32000] as const)('resamples a %i Hz MP3 to 44.1 kHz', async (rate) => {
    const mp3 = await synthesizeMp3({ seconds: 3, sampleRate: rate, seed: 5 });
    expect(scanMp3(mp3).sampleRate).toBe(rate);
    const d = await decodeMp3(mp3);
    expect(d.sampleRate).toBe(44100);
    expect(Math.abs(d.durationSec - 3)).toBeLessThan(0.1);
    // Level preserved (resampling accuracy itself is tested in resample.test.ts).
    const ref = synthesizeSong({ seconds: 3, sampleRate: rate, seed: 5 });
    expect(rms(d.channels[0]) / rms(ref[0])).toBeCloseTo(1, 1);
  });

  it('skips ID3v2 (with sync-like bytes) and ID3v1 tags', async () => {
    const plain = await decodeMp3(stereo44);
    const tagged = await decodeMp3(concat(id3v2Tag(5000), stereo44, id3v1Tag()));
    expect(sameSamples(tagged.channels[0], plain.channels[0])).toBe(true);
    expect(sameSamples(tagged.channels[1], plain.channels[1])).toBe(true);
  });

  it('rejects garbage bytes as not_mp3', async () => {
    const garbage = new Uint8Array(200_000).map((_, i) => (i * 2654435761) >>> 24);
    await expectAudioError(decodeMp3(garbage), 'not_mp3');
    await expectAudioError(decodeMp3(new TextEncoder().encode('RIFF....WAVEfmt definitely not audio')), 'not_mp3');
  });

  it('rejects an empty file, a tag-only file and zero-length audio as empty', async () => {
    await expectAudioError(decodeMp3(new Uint8Array(0)), 'empty');
    await expectAudioError(decodeMp3(id3v2Tag(300)), 'empty');
  });

  it('rejects a truncated file as corrupt', async () => {
    const cut = stereo44.subarray(0, Math.floor(stereo44.length * 0.6) + 7);
    const err = await expectAudioError(decodeMp3(cut), 'corrupt');
    expect(err.message).toMatch(/truncated/);
  });

  it('rejects a file with damaged frames beyond tolerance as corrupt', async () => {
    const damaged = stereo44.slice();
    for (let i = Math.floor(damaged.length * 0.3); i < damaged.length * 0.5; i++) damaged[i] = (i * 31) & 0x7f;
    await expectAudioError(decodeMp3(damaged), 'corrupt');
  });

  it('tolerates a little junk between frames', async () => {
    // 100 junk bytes at a frame boundary half-way through
    let at = scanMp3(stereo44).ranges[0][0];
    while (at < stereo44.length / 2) at += parseFrameHeader(stereo44, at)!.length;
    const d = await decodeMp3(concat(stereo44.subarray(0, at), new Uint8Array(100).fill(0x11), stereo44.subarray(at)));
    expect(d.durationSec).toBeGreaterThan(3.5);
  });

  it('rejects songs over maxDurationSec as too_long before decoding', async () => {
    const err = await expectAudioError(decodeMp3(stereo44, { maxDurationSec: 2 }), 'too_long');
    expect(err.message).toMatch(/2 s/);
  });
});

describe('encodeMp3', () => {
  it('encodes mono and stereo at the default VBR quality', async () => {
    const song = synthesizeSong({ seconds: 2, seed: 9 });
    const stereo = await encodeMp3(song, 44100);
    const mono = await encodeMp3([song[0]], 44100);
    expect(scanMp3(stereo).channels).toBe(2);
    expect(scanMp3(mono).channels).toBe(1);
    // ~190 kbps VBR → roughly 20..80 kB for 2 s
    expect(stereo.length).toBeGreaterThan(20_000);
    expect(stereo.length).toBeLessThan(80_000);
  });

  it('honours a constant bitrate', async () => {
    const song = synthesizeSong({ seconds: 2, seed: 9 });
    const cbr = await encodeMp3(song, 44100, { bitrate: 128 });
    expect(Math.abs(cbr.length - (128_000 / 8) * 2)).toBeLessThan(3000);
  });

  it.each([
    ['VBR stereo 44.1 kHz', 44100, 2, {}],
    ['CBR 128 kbps stereo 44.1 kHz', 44100, 2, { bitrate: 128 }],
    ['VBR mono 48 kHz', 48000, 1, {}],
    ['CBR 32 kbps mono 32 kHz (LAME encodes at 22.05 kHz)', 32000, 1, { bitrate: 32 }],
  ] as const)('writes a gapless Info tag: %s decodes to exactly its samples, an impulse in place (±1 after resampling)', async (_, rate, channels, quality) => {
    for (const length of [rate, rate + 777]) {
      const chs = Array.from({ length: channels }, () => new Float32Array(length));
      for (const ch of chs) ch[1234] = 0.9;
      const mp3 = await encodeMp3(chs, rate, quality);
      const decoded = await decodeMp3(mp3); // resampled to 44.1 kHz where the rate differs
      const scale = 44100 / rate;
      const tolerance = rate === 44100 ? 0 : 1; // LAME's and our resampling round to whole samples
      expect(Math.abs(decoded.channels[0].length - length * scale)).toBeLessThanOrEqual(tolerance);
      expect(Math.abs(peakIndex(decoded.channels[0]) - 1234 * scale)).toBeLessThanOrEqual(tolerance);
    }
  });

  it('fills the Xing/LAME fields as LAME does: frames, bytes, seek table, delay, padding, CRCs', async () => {
    const song = synthesizeSong({ seconds: 3, seed: 9 });
    const mp3 = await encodeMp3(song, 44100);
    const tagFrame = parseFrameHeader(mp3, 0)!;
    const x = 4 + 32;
    const text = (at: number, n: number) => String.fromCharCode(...mp3.subarray(at, at + n));
    const u32 = (at: number) => new DataView(mp3.buffer, mp3.byteOffset).getUint32(at);
    expect(text(x, 4)).toBe('Xing');
    expect(u32(x + 4)).toBe(0x0f);
    const frames = scanMp3(mp3).frames - 1; // the tag frame itself is not counted
    expect(u32(x + 8)).toBe(frames);
    expect(u32(x + 12)).toBe(mp3.length);
    const toc = mp3.subarray(x + 16, x + 116);
    expect(toc[0]).toBe(Math.floor((tagFrame.length * 256) / mp3.length));
    for (let i = 1; i < 100; i++) expect(toc[i]).toBeGreaterThanOrEqual(toc[i - 1]);
    const l = x + 120;
    expect(text(l, 9)).toBe('LAME3.100');
    const delay = (mp3[l + 21] << 4) | (mp3[l + 22] >> 4);
    const padding = ((mp3[l + 22] & 0x0f) << 8) | mp3[l + 23];
    expect(delay).toBe(LAME_ENCODER_DELAY);
    expect(frames * 1152 - delay - padding).toBe(song[0].length);
    expect(u32(l + 28)).toBe(mp3.length);
    expect((mp3[l + 32] << 8) | mp3[l + 33]).toBe(crc16(mp3.subarray(tagFrame.length)));
    expect((mp3[l + 34] << 8) | mp3[l + 35]).toBe(crc16(mp3.subarray(0, l + 34)));
  });

  it('computes CRC-16/ARC', () => {
    expect(crc16(new TextEncoder().encode('123456789'))).toBe(0xbb3d);
  });

  it('refuses invalid quality settings', async () => {
    const ch = [new Float32Array(1000)];
    await expect(encodeMp3(ch, 44100, { bitrate: 100 })).rejects.toThrow(RangeError);
    await expect(encodeMp3(ch, 44100, { vbrQuality: 12 })).rejects.toThrow(RangeError);
  });
});
