import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createObjectStore, loadConfig, streamToBuffer, OUTPUT_FORMATS, type ObjectStore } from '@msaas/common';
import { createStemEncoder, createHeadLastEncoder } from '@msaas/common/audio-encode/index';
import { PART_BYTES, StemUpload, UploadStaging, type StoreAttempt } from '../src/stem-upload.ts';
import { pieceBytes, readPiece } from '../src/pieces.ts';
import { startTestStore, type TestStore } from '../../test/helpers/env.ts';

/** Streaming outputs (issue 22 #7): head-last encoders give the same files, and the multipart upload stores them whole. */
let s3: TestStore;
let store: ObjectStore;
let staging: UploadStaging;
const direct: StoreAttempt = (_what, op) => op();

beforeAll(async () => {
  s3 = await startTestStore();
  store = createObjectStore(s3.endpoint, loadConfig({}, {}));
  await store.ensureBuckets();
  staging = new UploadStaging();
});
afterAll(async () => {
  staging?.remove();
  await s3?.close();
});

/** A few seconds of a two-tone stereo signal, fed in uneven chunks. */
function chunks(seconds: number): [Float32Array, Float32Array][] {
  const out: [Float32Array, Float32Array][] = [];
  const total = Math.round(seconds * 44100);
  let t = 0;
  for (let k = 0; t < total; k++) {
    const n = Math.min(total - t, [4096, 1000, 257985, 77, 30000][k % 5]!);
    const l = new Float32Array(n);
    const r = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      l[i] = 0.4 * Math.sin((2 * Math.PI * 440 * (t + i)) / 44100);
      r[i] = 0.3 * Math.sin((2 * Math.PI * 660 * (t + i)) / 44100);
    }
    out.push([l, r]);
    t += n;
  }
  return out;
}

describe('streamed stem files', () => {
  it('head ++ body of each head-last encoder is byte for byte the whole-file encoder\'s output, in every format', async () => {
    const input = chunks(7.3);
    for (const format of OUTPUT_FORMATS) {
      const whole = await createStemEncoder(format, 44100, 2);
      const body: Uint8Array[] = [];
      const streamed = await createHeadLastEncoder(format, 44100, 2, (b) => body.push(b.slice()));
      for (const [l, r] of input) {
        whole.encode([l, r]);
        streamed.encode([l, r]);
      }
      const expected = whole.finish();
      const head = streamed.finish();
      expect(Buffer.compare(Buffer.concat([head, ...body]), Buffer.from(expected)), format).toBe(0);
    }
  });

  it('a file larger than a part goes up in parts with its head in place; a small one in one PUT; nothing is visible before the end', async () => {
    const hash = 'f'.repeat(64);
    for (const size of [3 * PART_BYTES + 12345, PART_BYTES + 1, 2 * PART_BYTES, 1000]) {
      const body = Buffer.alloc(size);
      for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >> 9)) & 0xff;
      const upload = new StemUpload(store, hash, 'vocals', 'wav', direct, staging);
      for (let at = 0; at < size; at += 1_500_000) {
        upload.write(body.subarray(at, at + 1_500_000));
        await upload.ready();
      }
      expect(await store.statStem(hash, 'vocals', 'wav')).toBeNull();
      const head = Buffer.from('HEAD-OF-THE-FILE');
      await upload.finish(head);
      const stored = await streamToBuffer(await store.getStem(hash, 'vocals', undefined, 'wav'));
      expect(stored.length, `size ${size}`).toBe(head.length + size);
      expect(Buffer.compare(stored, Buffer.concat([head, body])), `size ${size}`).toBe(0);
      await store.removeStem(hash, 'vocals');
      expect(readdirSync(staging.dir)).toEqual([]); // no part left on disk
    }
  });

  it('an aborted upload leaves no object under the stem\'s name', async () => {
    const hash = 'e'.repeat(64);
    const upload = new StemUpload(store, hash, 'drums', 'flac', direct, staging);
    upload.write(Buffer.alloc(3 * PART_BYTES));
    await upload.ready();
    await upload.abort();
    expect(readdirSync(staging.dir)).toEqual([]);
    // (s3rver implements neither listing nor aborting multipart uploads; MinIO drops the parts on abort)
    expect(await store.statStem(hash, 'drums', 'flac')).toBeNull();
    await expect(upload.finish(new Uint8Array(0))).rejects.toThrow();
    expect(await store.statStem(hash, 'drums', 'flac')).toBeNull();
  });

  it('a piece is stored as float32 planar drums, bass, other, vocals (left then right) and read back exactly', async () => {
    const n = 1000;
    const stems = [0, 1, 2, 3].map((s) => [0, 1].map((c) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.01 * (s + 1)) * (c ? -1 : 1)))) as [Float32Array, Float32Array][];
    const bytes = pieceBytes(stems);
    expect(bytes.byteLength).toBe(32 * n);
    const hash = 'd'.repeat(64);
    await store.putPiece(hash, 0, bytes);
    await store.putPiece(hash, 1, bytes);
    expect(await store.listPieces(hash)).toEqual([0, 1]);
    const back = readPiece(await streamToBuffer(await store.getPiece(hash, 1)));
    for (let s = 0; s < 4; s++) for (let c = 0; c < 2; c++) expect(Array.from(back[s]![c]!)).toEqual(Array.from(stems[s]![c]!));
    expect(new DataView(bytes.buffer).getFloat32(4 * (2 * n + 5), true)).toBe(stems[1]![0]![5]); // bass left, LE
    expect(await store.liveSongs()).toContain(hash);
    expect(await store.removePieces(hash)).toBe(2);
    expect(await store.listPieces(hash)).toEqual([]);
  });
});
