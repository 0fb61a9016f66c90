import { FORMAT_INFO, stemKey, type ObjectStore, type OutputFormat, type Stem } from '@msaas/common';
import type { OutputSink } from './separation/index.ts';

/** S3's smallest part but the last; MinIO enforces it, so every part but the last is exactly this. */
export const PART_BYTES = 5 * 1024 * 1024;

/** How the upload runs one store request: the job's retries and timeout around it. */
export type StoreAttempt = <T>(what: string, op: () => Promise<T>) => Promise<T>;

/**
 * One stem file streamed to the store while it is encoded (issue 22 #7: no file is held whole).
 * The body goes up in 5 MiB multipart parts 2, 3, … as it grows, one part in flight and at most one
 * more waiting (ready() holds the chunk loop back beyond that). The file's head — WAV header, FLAC
 * STREAMINFO, MP3 Info tag, which need the total — is known only at the end, so the first part
 * (head + the body's first 5 MiB) is kept and goes up last, as part 1: memory per file is at most
 * four parts (~20 MiB) whatever the song's length. A file smaller than a part is one plain PUT at
 * the end. Nothing is visible under the stem's name before `finish` completes it.
 */
export class StemUpload implements OutputSink {
  private readonly key: string;
  private readonly contentType: string;
  /** Part 1's body bytes (the head goes in front at the end). */
  private first = new Uint8Array(PART_BYTES);
  private firstLen = 0;
  private current: Uint8Array | null = null;
  private currentLen = 0;
  private nextPart = 2;
  private uploadId: Promise<string> | null = null;
  private readonly etags: { part: number; etag: string }[] = [];
  /** Parts handed to the store and not yet acknowledged, in order. */
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private failure: Error | null = null;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly store: ObjectStore,
    hash: string,
    readonly stem: Stem,
    readonly format: OutputFormat,
    private readonly attempt: StoreAttempt,
  ) {
    this.key = stemKey(hash, stem, FORMAT_INFO[format].ext);
    this.contentType = FORMAT_INFO[format].contentType;
  }

  /** Bytes of the body taken so far. */
  bodyBytes = 0;

  write(bytes: Uint8Array): void {
    this.bodyBytes += bytes.length;
    let at = 0;
    if (this.firstLen < PART_BYTES) {
      const n = Math.min(bytes.length, PART_BYTES - this.firstLen);
      this.first.set(bytes.subarray(0, n), this.firstLen);
      this.firstLen += n;
      at = n;
    }
    while (at < bytes.length) {
      this.current ??= new Uint8Array(PART_BYTES);
      const n = Math.min(bytes.length - at, PART_BYTES - this.currentLen);
      this.current.set(bytes.subarray(at, at + n), this.currentLen);
      this.currentLen += n;
      at += n;
      if (this.currentLen === PART_BYTES) this.sendCurrent();
    }
  }

  /** Resolves once at most one part waits behind the one in flight; rejects once a part failed for good. */
  async ready(): Promise<void> {
    while (this.queued > 1 && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  private bucket(): string {
    return this.store.buckets.output;
  }

  private sendCurrent(): void {
    const part = this.nextPart++;
    const bytes = this.current!.subarray(0, this.currentLen);
    this.current = null;
    this.currentLen = 0;
    this.queued++;
    if (!this.uploadId) {
      this.uploadId = this.attempt(`start of the ${this.describe()} upload`, () =>
        this.store.client.initiateNewMultipartUpload(this.bucket(), this.key, { 'Content-Type': this.contentType }),
      );
      this.uploadId.catch(() => undefined); // its failure is met (and kept) in the chain below
    }
    const uploadId = this.uploadId;
    this.chain = this.chain
      .then(async () => {
        if (this.failure) return;
        const id = await uploadId;
        const { etag } = await this.attempt(`part ${part} of the ${this.describe()} upload`, () =>
          this.store.client.uploadPart({ bucketName: this.bucket(), objectName: this.key, uploadID: id, partNumber: part, headers: {} }, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
        );
        this.etags.push({ part, etag });
      })
      .catch((err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.queued--;
        for (const w of this.waiters.splice(0)) w();
      });
  }

  private describe(): string {
    return `${this.stem}${this.format === 'mp3' ? '' : ` (${this.format})`}`;
  }

  /** Puts the head in place and completes the object under its name. */
  async finish(head: Uint8Array): Promise<void> {
    const firstBody = this.first.subarray(0, this.firstLen);
    if (this.uploadId === null) {
      // Never reached a second part: one plain PUT of the whole (at most ~10 MiB).
      const tail = this.current?.subarray(0, this.currentLen) ?? new Uint8Array(0);
      const whole = Buffer.concat([head, firstBody, tail]);
      await this.attempt(`upload of ${this.describe()}`, () =>
        this.store.client.putObject(this.bucket(), this.key, whole, whole.length, { 'Content-Type': this.contentType }),
      );
      this.release();
      return;
    }
    if (this.currentLen > 0) this.sendCurrent();
    await this.chain;
    if (this.failure) throw this.failure;
    const uploadId = await this.uploadId;
    const part1 = Buffer.concat([head, firstBody]);
    const { etag } = await this.attempt(`part 1 of the ${this.describe()} upload`, () =>
      this.store.client.uploadPart({ bucketName: this.bucket(), objectName: this.key, uploadID: uploadId, partNumber: 1, headers: {} }, part1),
    );
    const etags = [{ part: 1, etag }, ...this.etags].sort((a, b) => a.part - b.part);
    await this.attempt(`completion of the ${this.describe()} upload`, () => this.store.client.completeMultipartUpload(this.bucket(), this.key, uploadId, etags));
    this.release();
  }

  /** Gives up (the job failed or was taken away): the parts already stored are dropped. */
  async abort(): Promise<void> {
    this.failure ??= new Error('upload aborted');
    const started = this.uploadId;
    this.release();
    if (!started) return;
    await this.chain;
    const uploadId = await started.catch(() => null);
    if (uploadId) await this.store.client.abortMultipartUpload(this.bucket(), this.key, uploadId).catch(() => undefined);
  }

  private release(): void {
    this.first = new Uint8Array(0);
    this.current = null;
    this.currentLen = 0;
  }
}
