import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { directUploadKey, type Config, type ObjectStore, type UploadSigner } from '@msaas/common';
import type { DirectUploadResponse } from '@msaas/common';
import { apiError, notFound, type ApiError } from '../errors.ts';

/** A direct upload's record in Redis: whose it is and what it may hold. */
interface UploadRecord {
  tenant: string;
  maxBytes: number;
  expiresAt: string;
  filename: string | null;
}

/** How long a record outlives its URL, so a late submit hears "expired" rather than "no such upload". */
const RECORD_GRACE_SEC = 3600;

export const UPLOAD_ID_RE = /^[0-9a-f]{32}$/;

/**
 * Direct uploads (issue 24 item 2): POST /apiv1/uploads hands out a presigned PUT URL for
 * `direct/<id>` in the queue bucket; POST /apiv1/separate {"upload": id} takes it once. The record
 * (`<prefix>direct-upload:<id>`, TTL = the URL's life + an hour) ties the id to its tenant; the
 * one-time take is a SET NX (`<prefix>direct-upload-taken:<id>`, same TTL). The object is checked
 * and read when submitted (size, sniff, hash, length); the store does not bound a presigned PUT's
 * size, so one over `maxBytes` is refused and removed then; one never submitted is removed by the
 * retention sweep once its URL has expired.
 */
export class DirectUploads {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly store: ObjectStore,
    private readonly signer: UploadSigner,
    private readonly expirySec: number,
    private readonly maxBytes: number,
  ) {}

  private recordKey(id: string): string {
    return `${this.prefix}direct-upload:${id}`;
  }

  private takenKey(id: string): string {
    return `${this.prefix}direct-upload-taken:${id}`;
  }

  async create(tenant: string, filename: string | null): Promise<DirectUploadResponse> {
    const id = randomBytes(16).toString('hex');
    const expiresAt = new Date(Date.now() + this.expirySec * 1000).toISOString();
    const record: UploadRecord = { tenant, maxBytes: this.maxBytes, expiresAt, filename };
    await this.redis.set(this.recordKey(id), JSON.stringify(record), 'EX', this.expirySec + RECORD_GRACE_SEC);
    const url = await this.signer.presignPut(directUploadKey(id), this.expirySec);
    return { id, url, method: 'PUT', expiresAt, maxBytes: this.maxBytes, headers: {} };
  }

  /**
   * The upload `id` of `tenant`, taken for a submit (once): its staged key and its size, after
   * checking that something was PUT there within its limit (an object over it is removed).
   */
  async take(id: string, tenant: string): Promise<{ key: string; size: number; filename: string | null }> {
    const raw = UPLOAD_ID_RE.test(id) ? await this.redis.get(this.recordKey(id)) : null;
    const record = raw ? (JSON.parse(raw) as UploadRecord) : null;
    // Another tenant's upload answers as one nobody made.
    if (!record || record.tenant !== tenant) throw notFound(`no upload ${id.slice(0, 64)} for this caller (POST /apiv1/uploads makes one; they are kept ${this.expirySec} s)`);
    const key = directUploadKey(id);
    if (Date.parse(record.expiresAt) < Date.now()) {
      await this.store.removeStaged(key).catch(() => undefined);
      throw apiError('upload_expired', `upload ${id} expired at ${record.expiresAt}; make a new one with POST /apiv1/uploads`);
    }
    const used = (): ApiError => apiError('upload_used', `upload ${id} was submitted already; each upload is submitted once (its song is in GET /apiv1/jobs)`);
    if ((await this.redis.exists(this.takenKey(id))) === 1) throw used();
    const info = await this.store.statStaged(key);
    if (!info) throw apiError('upload_missing', `nothing was uploaded to upload ${id} yet: PUT the file to its url first (until ${record.expiresAt})`);
    const ttl = Math.max(1, Math.ceil((Date.parse(record.expiresAt) - Date.now()) / 1000) + RECORD_GRACE_SEC);
    if ((await this.redis.set(this.takenKey(id), '1', 'EX', ttl, 'NX')) !== 'OK') throw used();
    if (info.size > record.maxBytes) {
      await this.store.removeStaged(key).catch(() => undefined);
      throw apiError('payload_too_large', `upload ${id} holds ${(info.size / 2 ** 20).toFixed(1)} MiB, over its limit of ${(record.maxBytes / 2 ** 20).toFixed(0)} MiB (MAX_UPLOAD_MB); it was removed`);
    }
    return { key, size: info.size, filename: record.filename };
  }
}

/** The app's direct uploads, from its configuration: URLs signed for STORE_PUBLIC_URL (default the store's own address). */
export function directUploadsFor(deps: { config: Config; store: ObjectStore; queue: { redis: Redis } }): DirectUploads {
  const { config, store } = deps;
  return new DirectUploads(deps.queue.redis, config.REDIS_PREFIX, store, store.uploadSigner(config.STORE_PUBLIC_URL), config.DIRECT_UPLOAD_EXPIRY_SEC, Math.floor(config.MAX_UPLOAD_MB * 2 ** 20));
}
