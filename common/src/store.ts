import type { Readable } from 'node:stream';
import * as Minio from 'minio';
import type { Config } from './config.ts';
import { STEMS, type Stem } from './tracks.ts';
import { EXTENSIONS, FORMAT_INFO, type Extension, type OutputFormat } from './formats.ts';

export interface StoreEndpoint {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
}

export interface ObjectInfo {
  size: number;
  etag: string;
  lastModified: Date;
  contentType: string | undefined;
}

export class ObjectStoreError extends Error {
  override name = 'ObjectStoreError';
}

const isNotFound = (err: unknown): boolean => {
  const code = (err as { code?: string } | null)?.code;
  return code === 'NotFound' || code === 'NoSuchKey' || code === 'NoSuchBucket';
};

export const uploadKey = (hash: string): string => `${hash}.mp3`;
/** Where an upload streams while its songhash is not known yet (queue bucket): `incoming/<random id>`. */
export const incomingKey = (id: string): string => `${INCOMING_PREFIX}${id}`;
export const INCOMING_PREFIX = 'incoming/';
/** Where a client PUTs a direct upload (POST /apiv1/uploads; queue bucket): `direct/<upload id>`. */
export const directUploadKey = (id: string): string => `${DIRECT_PREFIX}${id}`;
export const DIRECT_PREFIX = 'direct/';
/** S3's smallest part but the last: a streamed upload holds one such part in memory at a time. */
export const STREAM_PART_BYTES = 5 * 1024 * 1024;
/** A stem's object name, `<songhash>-<stem>.<ext>` (the lab's: `.mp3`). */
export const stemKey = (hash: string, stem: Stem, ext: Extension = 'mp3'): string => `${hash}-${stem}.${ext}`;
/** A progressive piece's object name in the output bucket: `live/<songhash>/<seq, 5 digits>.f32` (raw float32 LE, planar, STEMS' four model stems). */
export const liveKey = (hash: string, seq: number): string => `${livePrefix(hash)}${String(seq).padStart(5, '0')}.f32`;
const LIVE_PREFIX = 'live/';
/**
 * A range's output of a song split over workers (issue 23; output bucket):
 * `ranges/<songhash>/<index, 5 digits>.f32` (worker/src/ranges.ts writes and reads its layout).
 * Intermediate: removed when the song ends, and by the retention sweep.
 */
export const rangeKey = (hash: string, index: number): string => `${rangePrefix(hash)}${String(index).padStart(5, '0')}.f32`;
const RANGES_PREFIX = 'ranges/';
export const rangePrefix = (hash: string): string => `${RANGES_PREFIX}${hash}/`;
/** Where a song's pieces are: `live/<songhash>/`. */
export const livePrefix = (hash: string): string => `${LIVE_PREFIX}${hash}/`;

/** The two buckets, through the real minio client (MinIO in a cluster, the embedded S3 server locally). */
export class ObjectStore {
  readonly client: Minio.Client;

  constructor(
    readonly endpoint: StoreEndpoint,
    readonly buckets: { queue: string; output: string },
  ) {
    this.client = new Minio.Client({ ...endpoint, pathStyle: true });
  }

  /** Presigned PUT URLs into the queue bucket at the address clients reach (`publicUrl`, default the store's own). */
  uploadSigner(publicUrl: string | undefined): UploadSigner {
    return new UploadSigner(this.endpoint, publicUrl, this.buckets.queue);
  }

  async ensureBuckets(): Promise<void> {
    for (const bucket of [this.buckets.queue, this.buckets.output]) {
      if (!(await this.client.bucketExists(bucket))) {
        try {
          await this.client.makeBucket(bucket);
        } catch (err) {
          // Another service created it between our check and our call.
          const code = (err as { code?: string }).code;
          if (code !== 'BucketAlreadyOwnedByYou' && code !== 'BucketAlreadyExists') throw err;
        }
      }
    }
  }

  /** Readiness: can we reach the store and see our buckets. */
  async ping(): Promise<void> {
    if (!(await this.client.bucketExists(this.buckets.output))) throw new ObjectStoreError(`bucket ${this.buckets.output} missing`);
  }

  async putUpload(hash: string, bytes: Uint8Array, meta: Record<string, string> = {}): Promise<void> {
    await this.client.putObject(this.buckets.queue, uploadKey(hash), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, {
      'Content-Type': 'audio/mpeg',
      ...meta,
    });
  }

  /** A streamed upload into the queue bucket under `key` (incomingKey), one 5 MiB part in memory at a time. */
  streamUpload(key: string, contentType = 'application/octet-stream', meta: Record<string, string> = {}): StreamingPut {
    return new StreamingPut(this.client, this.buckets.queue, key, { 'Content-Type': contentType, ...meta });
  }

  /**
   * Moves a staged object of the queue bucket (incoming/…, direct/…) to the song's upload key; when
   * the song is stored already the staged copy is just dropped. The stored name is the songhash's.
   */
  async promoteUpload(stagedKey: string, hash: string): Promise<void> {
    if (!(await this.hasUpload(hash))) {
      await this.client.copyObject(this.buckets.queue, uploadKey(hash), `/${this.buckets.queue}/${stagedKey}`, new Minio.CopyConditions());
    }
    await this.removeStaged(stagedKey);
  }

  async statStaged(key: string): Promise<ObjectInfo | null> {
    return this.stat(this.buckets.queue, key);
  }

  async getStaged(key: string): Promise<Readable> {
    return this.client.getObject(this.buckets.queue, key);
  }

  async removeStaged(key: string): Promise<void> {
    await this.client.removeObject(this.buckets.queue, key);
  }

  /** Staged objects (`incoming/`, `direct/`) last written before `before`, for the sweeper; at most `limit`. */
  async staleStaged(prefix: string, before: Date, limit = 1000): Promise<string[]> {
    const names: string[] = [];
    const stream = this.client.listObjectsV2(this.buckets.queue, prefix, true);
    for await (const o of stream as AsyncIterable<{ name?: string; lastModified?: Date }>) {
      if (o.name && o.lastModified && o.lastModified < before) names.push(o.name);
      if (names.length >= limit) {
        stream.destroy();
        break;
      }
    }
    return names;
  }

  /** The whole upload, read into one buffer of the object's size (a song held once, not twice while joined). */
  async getUpload(hash: string): Promise<Buffer> {
    const key = uploadKey(hash);
    const { size } = await this.client.statObject(this.buckets.queue, key);
    return streamToBuffer(await this.client.getObject(this.buckets.queue, key), size);
  }

  /** The upload's size in bytes. */
  async statUpload(hash: string): Promise<number> {
    return (await this.client.statObject(this.buckets.queue, uploadKey(hash))).size;
  }

  /** `length` bytes of the upload from `offset` (the worker reads a WAV as it decodes it). */
  async getUploadPart(hash: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    return streamToBuffer(await this.client.getPartialObject(this.buckets.queue, uploadKey(hash), offset, length), length);
  }

  async hasUpload(hash: string): Promise<boolean> {
    return (await this.stat(this.buckets.queue, uploadKey(hash))) !== null;
  }

  async removeUpload(hash: string): Promise<void> {
    await this.client.removeObject(this.buckets.queue, uploadKey(hash));
  }

  async putStem(hash: string, stem: Stem, bytes: Uint8Array, format: OutputFormat = 'mp3'): Promise<void> {
    const { ext, contentType } = FORMAT_INFO[format];
    await this.client.putObject(this.buckets.output, stemKey(hash, stem, ext), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, {
      'Content-Type': contentType,
    });
  }

  async statStem(hash: string, stem: Stem, ext: Extension = 'mp3'): Promise<ObjectInfo | null> {
    return this.stat(this.buckets.output, stemKey(hash, stem, ext));
  }

  /** Streams a stem, whole or a byte range [start, end] inclusive. */
  async getStem(hash: string, stem: Stem, range?: { start: number; end: number }, ext: Extension = 'mp3'): Promise<Readable> {
    const key = stemKey(hash, stem, ext);
    if (range) return this.client.getPartialObject(this.buckets.output, key, range.start, range.end - range.start + 1);
    return this.client.getObject(this.buckets.output, key);
  }

  /** Removes a stem in every format it is stored in; true when there was one. */
  async removeStem(hash: string, stem: Stem): Promise<boolean> {
    let existed = false;
    for (const ext of EXTENSIONS) {
      if ((await this.statStem(hash, stem, ext)) === null) continue;
      await this.client.removeObject(this.buckets.output, stemKey(hash, stem, ext));
      existed = true;
    }
    return existed;
  }

  /** Removes every stem of a song, all formats; how many stems (not files) there were. */
  async removeAllStems(hash: string): Promise<number> {
    let removed = 0;
    for (const stem of STEMS) if (await this.removeStem(hash, stem)) removed++;
    return removed;
  }

  async statPiece(hash: string, seq: number): Promise<ObjectInfo | null> {
    return this.stat(this.buckets.output, liveKey(hash, seq));
  }

  /** Streams a piece, whole or a byte range [start, end] inclusive. */
  async getPiece(hash: string, seq: number, range?: { start: number; end: number }): Promise<Readable> {
    const key = liveKey(hash, seq);
    if (range) return this.client.getPartialObject(this.buckets.output, key, range.start, range.end - range.start + 1);
    return this.client.getObject(this.buckets.output, key);
  }

  /** Stores one piece (the worker, before the job record mentions it). */
  async putPiece(hash: string, seq: number, bytes: Uint8Array): Promise<void> {
    await this.client.putObject(this.buckets.output, liveKey(hash, seq), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, {
      'Content-Type': 'application/octet-stream',
    });
  }

  /** The seq numbers of a song's stored pieces, ascending. */
  async listPieces(hash: string): Promise<number[]> {
    const seqs: number[] = [];
    for (const name of await this.listNames(livePrefix(hash), true)) {
      const m = /\/(\d{5,})\.f32$/.exec(name);
      if (m) seqs.push(Number(m[1]));
    }
    return seqs.sort((a, b) => a - b);
  }

  /** Removes every object under `live/<songhash>/`; how many there were. */
  async removePieces(hash: string): Promise<number> {
    const names = await this.listNames(livePrefix(hash), true);
    // One at a time: s3rver's multi-object delete races on the shared folder (500s).
    for (const name of names) await this.client.removeObject(this.buckets.output, name);
    return names.length;
  }

  /** Stores one range's output (a worker of a split song). */
  async putRange(hash: string, index: number, bytes: Uint8Array): Promise<void> {
    await this.client.putObject(this.buckets.output, rangeKey(hash, index), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, {
      'Content-Type': 'application/octet-stream',
    });
  }

  async getRange(hash: string, index: number): Promise<Buffer> {
    return streamToBuffer(await this.client.getObject(this.buckets.output, rangeKey(hash, index)));
  }

  /** `length` bytes of a range's output from `offset` (a stem's encoding unit reads only its sources). */
  async getRangePart(hash: string, index: number, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    return streamToBuffer(await this.client.getPartialObject(this.buckets.output, rangeKey(hash, index), offset, length));
  }

  /** The indexes of a song's stored range outputs, ascending. */
  async listRanges(hash: string): Promise<number[]> {
    const found: number[] = [];
    for (const name of await this.listNames(rangePrefix(hash), true)) {
      const m = /\/(\d{5,})\.f32$/.exec(name);
      if (m) found.push(Number(m[1]));
    }
    return found.sort((a, b) => a - b);
  }

  /** Removes every object under `ranges/<songhash>/`; how many there were. */
  async removeRanges(hash: string): Promise<number> {
    const names = await this.listNames(rangePrefix(hash), true);
    for (const name of names) await this.client.removeObject(this.buckets.output, name);
    return names.length;
  }

  /** Songhashes that have objects under `ranges/` (for the sweeper), at most `limit`. */
  async rangeSongs(limit = 1000): Promise<string[]> {
    const prefixes = await this.listNames(RANGES_PREFIX, false, limit);
    return prefixes.map((p) => p.slice(RANGES_PREFIX.length).replace(/\/$/, '')).filter((h) => h !== '');
  }

  /** Songhashes that have objects under `live/` (for the sweeper), at most `limit`. */
  async liveSongs(limit = 1000): Promise<string[]> {
    const prefixes = await this.listNames(LIVE_PREFIX, false, limit);
    return prefixes.map((p) => p.slice(LIVE_PREFIX.length).replace(/\/$/, '')).filter((h) => h !== '');
  }

  /** Object names (recursive) or first-level prefixes (not recursive) under `prefix` in the output bucket. */
  private async listNames(prefix: string, recursive: boolean, limit = Number.POSITIVE_INFINITY): Promise<string[]> {
    const names: string[] = [];
    const stream = this.client.listObjectsV2(this.buckets.output, prefix, recursive);
    for await (const o of stream as AsyncIterable<{ name?: string; prefix?: string }>) {
      const name = o.name ?? o.prefix;
      if (name) names.push(name);
      if (names.length >= limit) {
        stream.destroy();
        break;
      }
    }
    return names;
  }

  private async stat(bucket: string, key: string): Promise<ObjectInfo | null> {
    try {
      const s = await this.client.statObject(bucket, key);
      return { size: s.size, etag: s.etag, lastModified: s.lastModified, contentType: s.metaData?.['content-type'] as string | undefined };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}

/**
 * One object written as it arrives: bytes fill a 5 MiB part; each full part goes up (multipart)
 * before more is taken (`write` resolves then), so one part is in memory whatever the object's size.
 * An object that never fills a part is one plain PUT at `finish`. Nothing is visible under `key`
 * before `finish` completes; `abort` drops what was sent.
 */
export class StreamingPut {
  private part = Buffer.allocUnsafe(STREAM_PART_BYTES);
  private filled = 0;
  private uploadId: string | null = null;
  private readonly etags: { part: number; etag: string }[] = [];
  private size = 0;

  constructor(
    private readonly client: Minio.Client,
    private readonly bucket: string,
    readonly key: string,
    private readonly headers: Record<string, string>,
  ) {}

  get bytesWritten(): number {
    return this.size;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, STREAM_PART_BYTES - this.filled);
      this.part.set(bytes.subarray(at, at + n), this.filled);
      this.filled += n;
      this.size += n;
      at += n;
      if (this.filled === STREAM_PART_BYTES) await this.sendPart();
    }
  }

  private async sendPart(): Promise<void> {
    this.uploadId ??= await this.client.initiateNewMultipartUpload(this.bucket, this.key, this.headers);
    const partNumber = this.etags.length + 1;
    const { etag } = await this.client.uploadPart({ bucketName: this.bucket, objectName: this.key, uploadID: this.uploadId, partNumber, headers: {} }, this.part.subarray(0, this.filled));
    this.etags.push({ part: partNumber, etag });
    this.filled = 0;
  }

  async finish(): Promise<void> {
    if (this.uploadId === null) {
      await this.client.putObject(this.bucket, this.key, this.part.subarray(0, this.filled), this.filled, this.headers);
    } else {
      if (this.filled > 0) await this.sendPart();
      await this.client.completeMultipartUpload(this.bucket, this.key, this.uploadId, this.etags);
    }
    this.part = Buffer.alloc(0);
  }

  /**
   * Like `finish`, but an object that never filled a part (at most 5 MiB, still in memory) is not
   * written: it is handed back, for the caller to store under its final name only if it needs it
   * (one PUT instead of a PUT, a copy and a delete; none for a song stored already).
   */
  async finishOrHold(): Promise<Buffer | null> {
    if (this.uploadId !== null) {
      await this.finish();
      return null;
    }
    const held = this.part.subarray(0, this.filled);
    this.part = Buffer.alloc(0);
    return held;
  }

  /** Drops what was sent (a refused or failed upload); never throws. */
  async abort(): Promise<void> {
    this.part = Buffer.alloc(0);
    if (this.uploadId !== null) await this.client.abortMultipartUpload(this.bucket, this.key, this.uploadId).catch(() => undefined);
    await this.client.removeObject(this.bucket, this.key).catch(() => undefined);
  }
}

/**
 * Presigned URLs for the address clients reach the store at (STORE_PUBLIC_URL): a client of its
 * own, as a V4 signature covers the Host header. Signing is local (no request to the store).
 */
export class UploadSigner {
  private readonly client: Minio.Client;

  constructor(
    endpoint: StoreEndpoint,
    publicUrl: string | undefined,
    private readonly bucket: string,
  ) {
    const url = publicUrl ? new URL(publicUrl) : null;
    const useSSL = url ? url.protocol === 'https:' : endpoint.useSSL;
    this.client = new Minio.Client({
      ...endpoint,
      ...(url ? { endPoint: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : useSSL ? 443 : 80, useSSL } : {}),
      pathStyle: true,
    });
  }

  /** A URL the client PUTs the file to (any Content-Type), valid `expirySec`. */
  presignPut(key: string, expirySec: number): Promise<string> {
    return this.client.presignedPutObject(this.bucket, key, expirySec);
  }
}

/**
 * A stream's bytes in one Buffer. With `expectedBytes` (the object's size) the bytes are copied into
 * one buffer of that size as they arrive, so the peak is the content once rather than the chunks
 * plus their concatenation; a stream that turns out longer falls back to joining.
 */
export async function streamToBuffer(stream: Readable, expectedBytes?: number): Promise<Buffer> {
  const out = expectedBytes !== undefined ? Buffer.allocUnsafe(expectedBytes) : null;
  let filled = 0;
  const chunks: Buffer[] = [];
  for await (const piece of stream) {
    const chunk = Buffer.isBuffer(piece) ? piece : Buffer.from(piece as Uint8Array);
    if (out && chunks.length === 0 && filled + chunk.length <= out.length) {
      chunk.copy(out, filled);
      filled += chunk.length;
    } else {
      if (out && chunks.length === 0 && filled > 0) chunks.push(out.subarray(0, filled));
      chunks.push(chunk);
    }
  }
  if (out && chunks.length === 0) return filled === out.length ? out : out.subarray(0, filled);
  return Buffer.concat(chunks);
}

export function storeEndpointFromConfig(config: Config): StoreEndpoint | null {
  if (!config.MINIO_ENDPOINT) return null;
  return {
    endPoint: config.MINIO_ENDPOINT,
    port: config.MINIO_PORT,
    useSSL: config.MINIO_USE_SSL,
    accessKey: config.MINIO_ACCESS_KEY,
    secretKey: config.MINIO_SECRET_KEY,
    region: config.MINIO_REGION,
  };
}

export function createObjectStore(endpoint: StoreEndpoint, config: Pick<Config, 'QUEUE_BUCKET' | 'OUTPUT_BUCKET'>): ObjectStore {
  return new ObjectStore(endpoint, { queue: config.QUEUE_BUCKET, output: config.OUTPUT_BUCKET });
}
