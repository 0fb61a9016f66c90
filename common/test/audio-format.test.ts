import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AudioInputError, probeAudio, sniffAudioFormat, parseWav, parseFlac, parseOgg, parseMp4Aac, oggPageCrc, ACCEPTED_FORMATS,
} from '@msaas/common';
import { synthesizeSong, synthesizeMp3 } from '../../worker/fixtures/synth.ts';
import { encodeAs, encodeWav } from '../../worker/fixtures/encode-formats.ts';

/** The content sniff and the header parsers of every input format (no decoding here). */
const enc = new TextEncoder();
const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const song = synthesizeSong({ seconds: 1, seed: 3 });
const clips: Record<string, Uint8Array> = {};

beforeAll(async () => {
  for (const f of ['wav16', 'wav-ext', 'flac', 'ogg-vorbis', 'ogg-opus', 'm4a'] as const) clips[f] = await encodeAs(f, song, 44100);
  clips.mp3 = await synthesizeMp3({ seconds: 1, seed: 3 });
}, 60_000);

function audioError(fn: () => unknown): AudioInputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AudioInputError);
    return err as AudioInputError;
  }
  throw new Error('expected an AudioInputError');
}

describe('sniffAudioFormat tells the format by content', () => {
  it('recognises each format taken, whatever it would be called', () => {
    expect(sniffAudioFormat(clips.mp3!)).toEqual({ format: 'mp3' });
    expect(sniffAudioFormat(clips.wav16!)).toEqual({ format: 'wav' });
    expect(sniffAudioFormat(clips['wav-ext']!)).toEqual({ format: 'wav' });
    expect(sniffAudioFormat(clips.flac!)).toEqual({ format: 'flac' });
    expect(sniffAudioFormat(clips['ogg-vorbis']!)).toEqual({ format: 'ogg-vorbis' });
    expect(sniffAudioFormat(clips['ogg-opus']!)).toEqual({ format: 'ogg-opus' });
    expect(sniffAudioFormat(clips.m4a!)).toEqual({ format: 'mp4-aac' });
  });

  it('keeps taking MP3s as the lab sends them: after ID3 tags, after junk, and MP3 frames in a RIFF/WAVE wrapper', () => {
    const id3 = new Uint8Array([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 20, ...new Uint8Array(20)]);
    expect(sniffAudioFormat(new Uint8Array([...id3, ...clips.mp3!])).format).toBe('mp3');
    const riff = encodeWav([new Float32Array(4)], 44100);
    riff[20] = 0x55; // WAVE_FORMAT_MPEGLAYER3
    expect(sniffAudioFormat(new Uint8Array([...riff.subarray(0, 44), ...clips.mp3!])).format).toBe('mp3');
    // A FLAC behind an ID3 tag is still a FLAC.
    expect(sniffAudioFormat(new Uint8Array([...id3, ...clips.flac!])).format).toBe('flac');
  });

  it('names what else it found', () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['AIFF', latin1('FORM\0\0\0\x20AIFFCOMM'), /AIFF/],
      ['AIFC', latin1('FORM\0\0\0\x20AIFCFVER'), /AIFF/],
      ['AVI', latin1('RIFF\0\0\0\0AVI LIST'), /AVI video/],
      ['WebM', new Uint8Array([0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3]), /Matroska\/WebM/],
      ['MIDI', latin1('MThd\0\0\0\x06'), /MIDI/],
      ['CAF', latin1('caff\0\x01\0\0'), /CAF/],
      ['ADTS', new Uint8Array([0xff, 0xf1, 0x50, 0x80, 0, 0x1f, 0xfc]), /ADTS/],
      ['ZIP', latin1('PK\x03\x04'), /ZIP/],
      ['PDF', latin1('%PDF-1.4'), /PDF/],
      ['PNG', latin1('\x89PNG\r\n\x1a\n'), /PNG/],
      ['JPEG', new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), /JPEG/],
      ['ELF', latin1('\x7fELF\x02'), /program/],
      ['HTML', enc.encode('<!doctype html><html>'), /HTML/],
      ['text', enc.encode('just some words'), /^text$/],
      ['random', new Uint8Array(600).map((_, i) => (i * 7919 + 13) % 256 || 1), /no audio format/],
    ];
    for (const [what, bytes, re] of cases) {
      const s = sniffAudioFormat(bytes);
      expect(s.format, what).toBeNull();
      if (s.format === null) expect(s.found, what).toMatch(re);
    }
    const err = audioError(() => probeAudio(latin1('FORM\0\0\0\x20AIFFCOMM')));
    expect(err.code).toBe('unsupported_format');
    expect(err.message).toBe(`the file is an AIFF file; the formats taken are ${ACCEPTED_FORMATS}`);
  });
});

describe('header parsers give the length before decoding, and refuse broken headers', () => {
  it('WAV: format, rate, channels and length; unknown data sizes (0, 0xFFFFFFFF) read to the end; a size past the end is truncated', () => {
    const w = parseWav(clips.wav16!);
    expect(w).toMatchObject({ encoding: 'pcm', bitsPerSample: 16, channels: 2, sampleRate: 44100, frames: 44100, durationSec: 1 });
    expect(parseWav(clips['wav-ext']!)).toMatchObject({ encoding: 'pcm', bitsPerSample: 24, frames: 44100 });
    for (const size of [0, 0xffffffff]) {
      const b = clips.wav16!.slice();
      new DataView(b.buffer).setUint32(40, size, true);
      expect(parseWav(b).frames).toBe(44100);
    }
    const cut = clips.wav16!.subarray(0, 1000);
    expect(audioError(() => parseWav(cut))).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/truncated: its data chunk promises 176400 bytes, the file holds 956/) });
    expect(audioError(() => parseWav(clips.wav16!.subarray(0, 30)))).toMatchObject({ code: 'corrupt' });
    const noData = clips.wav16!.slice(0, 36);
    expect(audioError(() => parseWav(noData)).message).toMatch(/no data chunk/);
    const badAlign = clips.wav16!.slice();
    badAlign[32] = 3;
    expect(audioError(() => parseWav(badAlign)).message).toMatch(/block size/);
  });

  it('FLAC: STREAMINFO rate, channels, depth and total length; a length of 0 taken from the last frame header; broken metadata is corrupt', () => {
    const f = parseFlac(clips.flac!);
    // The streaming encoder leaves STREAMINFO's total at 0: the last frame's number gives the length.
    expect(f).toMatchObject({ sampleRate: 44100, channels: 2, bitsPerSample: 16, totalSamples: 0, durationSec: 1 });
    // Without a findable last frame (its header's CRC broken), the length is unknown.
    const noLast = clips.flac!.slice(0, clips.flac!.length - 1);
    for (let i = f.audioStart + 1; i < noLast.length - 1; i++) if (noLast[i] === 0xff && (noLast[i + 1]! & 0xfe) === 0xf8) noLast[i + 1] = 0;
    noLast[f.audioStart + 2] ^= 0x01; // the first frame's header no longer matches its CRC-8
    expect(parseFlac(noLast).durationSec).toBeNull();
    const stated = clips.flac!.slice();
    stated[8 + 13] = stated[8 + 13]! & 0xf0;
    new DataView(stated.buffer).setUint32(8 + 14, 44100);
    expect(parseFlac(stated).durationSec).toBe(1);
    // Cut in half: the last frame header left ends far short of the stated length.
    expect(audioError(() => parseFlac(stated.subarray(0, stated.length >> 1)))).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/truncated: its header promises 44100 samples, its last frame ends at sample/) });
    expect(audioError(() => parseFlac(clips.flac!.subarray(0, 20))).message).toMatch(/truncated inside its STREAMINFO/);
    const sixChannels = stated.slice();
    sixChannels[8 + 12] = (sixChannels[8 + 12]! & 0xf1) | (5 << 1);
    expect(audioError(() => parseFlac(sixChannels))).toMatchObject({ code: 'unsupported_format', message: expect.stringMatching(/6 channels/) });
    const noFrame = stated.slice();
    const audioStart = parseFlac(stated).audioStart;
    noFrame[audioStart] = 0;
    expect(audioError(() => parseFlac(noFrame)).message).toMatch(/no audio frame where its metadata ends/);
  });

  it('Ogg: codec from the first packet, length from the last granule; a cut page, a bad CRC or a second stream are refused', () => {
    const v = parseOgg(clips['ogg-vorbis']!);
    expect(v).toMatchObject({ codec: 'vorbis', sampleRate: 44100, channels: 2 });
    expect(v.durationSec).toBeCloseTo(1, 2);
    const o = parseOgg(clips['ogg-opus']!);
    expect(o).toMatchObject({ codec: 'opus', sampleRate: 48000, channels: 2, preSkip: 312 });
    const cut = clips['ogg-vorbis']!.subarray(0, clips['ogg-vorbis']!.length - 10);
    expect(audioError(() => parseOgg(cut))).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/truncated/) });
    const damaged = clips['ogg-vorbis']!.slice();
    damaged[damaged.length - 100] ^= 0xff;
    expect(audioError(() => parseOgg(damaged)).message).toMatch(/fails its checksum/);
    // A second logical stream: the same file's pages with another serial number (and CRCs made right).
    const second = clips['ogg-opus']!.slice();
    const firstEnd = 27 + second[26]! + second.subarray(27, 27 + second[26]!).reduce((s, x) => s + x, 0);
    const view = new DataView(second.buffer);
    const bodyEnd = firstEnd + 27 + second[firstEnd + 26]! + second.subarray(firstEnd + 27, firstEnd + 27 + second[firstEnd + 26]!).reduce((s, x) => s + x, 0);
    view.setUint32(firstEnd + 14, 12345, true);
    view.setUint32(firstEnd + 22, oggPageCrc(second, firstEnd, bodyEnd), true);
    expect(audioError(() => parseOgg(second))).toMatchObject({ code: 'unsupported_format', message: expect.stringMatching(/more than one stream/) });
    const theora = clips['ogg-vorbis']!.slice();
    theora.set(latin1('\x80theora'), 28);
    expect(audioError(() => parseOgg(theora)).code).toMatch(/unsupported_format|corrupt/);
  });

  it('MP4: the AAC track, its AudioSpecificConfig, sample table and length; fragments, other codecs and samples past the end are refused', () => {
    const m = parseMp4Aac(clips.m4a!);
    expect(m.channels).toBe(2);
    expect(m.sampleRate).toBe(44100);
    expect(m.asc[0]! >> 3).toBe(2); // AAC-LC
    expect(m.durationSec).toBeGreaterThan(1);
    expect(m.durationSec).toBeLessThan(1.05);
    for (let i = 0; i < m.sizes.length; i++) expect(m.offsets[i]! + m.sizes[i]!).toBeLessThanOrEqual(clips.m4a!.length);
    const text = new TextDecoder('latin1').decode(clips.m4a!);
    const at = (box: string): number => text.indexOf(box);
    const withType = (from: string, to: string): Uint8Array => {
      const b = clips.m4a!.slice();
      b.set(latin1(to), at(from));
      return b;
    };
    expect(audioError(() => parseMp4Aac(withType('mp4a', 'ac-3'))).message).toMatch(/Dolby Digital \(AC-3\)/);
    expect(audioError(() => parseMp4Aac(withType('soun', 'vide'))).message).toMatch(/a video without an audio track/);
    expect(audioError(() => parseMp4Aac(withType('moov', 'moof'))).code).toMatch(/corrupt|unsupported_format/);
    // An mdat that ends before the samples the table places in it: truncated.
    const mdat = at('mdat') - 4;
    const cutAt = mdat + 8 + Math.floor((at('moov') > mdat ? at('moov') - 4 - mdat : clips.m4a!.length - mdat) / 2);
    const cut = at('moov') < mdat ? clips.m4a!.subarray(0, cutAt) : new Uint8Array([...clips.m4a!.subarray(0, cutAt)]);
    expect(audioError(() => parseMp4Aac(cut)).code).toBe('corrupt');
    // A box too small for its fields at the very end of the file: corrupt, not a RangeError (a 500 at submit).
    const tiny = latin1('\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x10moov\0\0\0\x08mvhd');
    expect(audioError(() => parseMp4Aac(tiny))).toMatchObject({ code: 'corrupt', message: expect.stringMatching(/malformed/) });
    // A sample count larger than the file is refused before anything is allocated for it.
    const lie = clips.m4a!.slice();
    new DataView(lie.buffer).setUint32(at('stsz') + 12, 0x7fffffff);
    expect(audioError(() => parseMp4Aac(lie)).code).toBe('corrupt');
  });
});

describe('probeAudio on hostile bytes (what rest runs at submit)', () => {
  it('throws nothing but AudioInputError for 1,500 seeded truncations, header mutations and splices of every format', () => {
    const all = Object.values(clips);
    const codes: Record<string, number> = {};
    fc.assert(
      fc.property(
        fc.nat(all.length - 1),
        fc.nat(all.length - 1),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.array(fc.tuple(fc.nat(600), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.constantFrom('cut', 'flip', 'splice', 'flip-cut'),
        (i, j, f, flips, kind) => {
          let b = all[i]!.slice();
          if (kind === 'flip' || kind === 'flip-cut') for (const [at, v] of flips) b[at % b.length] = v;
          if (kind === 'cut' || kind === 'flip-cut') b = b.subarray(0, Math.floor(b.length * f));
          if (kind === 'splice') b = new Uint8Array([...b.subarray(0, Math.floor(b.length * f)), ...all[j]!.subarray(Math.floor(all[j]!.length * f))]);
          try {
            const p = probeAudio(b);
            codes.ok = (codes.ok ?? 0) + 1;
            expect(p.durationSec === null || Number.isFinite(p.durationSec)).toBe(true);
          } catch (err) {
            if (!(err instanceof AudioInputError)) throw err;
            codes[err.code] = (codes[err.code] ?? 0) + 1;
          }
        },
      ),
      { seed: 20261203, numRuns: 1500 },
    );
    console.log(`[audio-format] probeAudio outcomes: ${JSON.stringify(codes)}`);
    expect(codes.corrupt).toBeGreaterThan(100);
  });
});
