import type { Readable } from 'node:stream';
import * as Minio from 'minio';
import type { Config } from './config.ts';
import type { Track } from './tracks.ts';

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
export const stemKey = (hash: string, track: Track): string => `${hash}-${track}.mp3`;

/** The two buckets, through the real minio client (MinIO in a cluster, the embedded S3 server locally). */
export class ObjectStore {
  readonly client: Minio.Client;

  constructor(
    endpoint: StoreEndpoint,
    readonly buckets: { queue: string; output: string },
  ) {
    this.client = new Minio.Client({ ...endpoint, pathStyle: true });
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

  async getUpload(hash: string): Promise<Buffer> {
    return streamToBuffer(await this.client.getObject(this.buckets.queue, uploadKey(hash)));
  }

  async hasUpload(hash: string): Promise<boolean> {
    return (await this.stat(this.buckets.queue, uploadKey(hash))) !== null;
  }

  async removeUpload(hash: string): Promise<void> {
    await this.client.removeObject(this.buckets.queue, uploadKey(hash));
  }

  async putStem(hash: string, track: Track, bytes: Uint8Array): Promise<void> {
    await this.client.putObject(this.buckets.output, stemKey(hash, track), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), bytes.byteLength, {
      'Content-Type': 'audio/mpeg',
    });
  }

  async statStem(hash: string, track: Track): Promise<ObjectInfo | null> {
    return this.stat(this.buckets.output, stemKey(hash, track));
  }

  /** Streams a stem, whole or a byte range [start, end] inclusive. */
  async getStem(hash: string, track: Track, range?: { start: number; end: number }): Promise<Readable> {
    const key = stemKey(hash, track);
    if (range) return this.client.getPartialObject(this.buckets.output, key, range.start, range.end - range.start + 1);
    return this.client.getObject(this.buckets.output, key);
  }

  async removeStem(hash: string, track: Track): Promise<boolean> {
    const existed = (await this.statStem(hash, track)) !== null;
    if (existed) await this.client.removeObject(this.buckets.output, stemKey(hash, track));
    return existed;
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

export async function streamToBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
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
