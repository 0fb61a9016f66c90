import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FORMAT_INFO, stemKey, type ObjectStore, type OutputFormat, type Stem } from '@msaas/common';
import type { OutputSink } from './separation/index.ts';

/** S3's smallest part but the last; MinIO enforces it, so every part but the last is exactly this. */
export const PART_BYTES = 5 * 1024 * 1024;

/** Parts of one file written and waiting for the store before the chunk loop waits (disk, not memory). */
const MAX_WAITING_PARTS = 4;

/** How the upload runs one store request: the job's retries and timeout around it. */
export type StoreAttempt = <T>(what: string, op: () => Promise<T>) => Promise<T>;

/**
 * One job's staging: a temporary folder for the parts being filled, and a single lane for the
 * part uploads of all its files, so the parts in memory at any moment are one (5 MiB) whatever the
 * number of files.
 */
export class UploadStaging {
  readonly dir: string;
  private lane: Promise<unknown> = Promise.resolve();

  constructor(parent = os.tmpdir()) {
    this.dir = mkdtempSync(path.join(parent, 'msaas-stems-'));
  }

  /** Runs `op` after every op queued before it. */
  run<T>(op: () => Promise<T>): Promise<T> {
    const next = this.lane.then(op, op);
    this.lane = next.catch(() => undefined);
    return next;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One stem file streamed to the store while it is encoded (issue 22 #7: no file is held whole, in
 * memory or on disk). The body is cut into 5 MiB parts written to the staging folder as they fill;
 * parts 2, 3, … go up (multipart) as soon as they are complete, one at a time for the whole job, and
 * leave the disk. The file's head — WAV header, FLAC STREAMINFO, MP3 Info tag, which need the
 * total — is known only at the end, so part 1 (head + the body's first 5 MiB) stays on disk and
 * goes up last. A file that never passes two parts is one plain PUT at the end. Nothing is visible
 * under the stem's name before `finish` completes it.
 */
export class StemUpload implements OutputSink {
  private readonly key: string;
  private readonly contentType: string;
  private readonly base: string;
  /** The part being filled: 1, 2, … */
  private part = 1;
  private fd: number;
  private partLen = 0;
  private uploadId: Promise<string> | null = null;
  private readonly etags: { part: number; etag: string }[] = [];
  private readonly sent: Promise<void>[] = [];
  private waiting = 0;
  private failure: Error | null = null;
  private waiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly store: ObjectStore,
    hash: string,
    readonly stem: Stem,
    readonly format: OutputFormat,
    private readonly attempt: StoreAttempt,
    private readonly staging: UploadStaging,
  ) {
    this.key = stemKey(hash, stem, FORMAT_INFO[format].ext);
    this.contentType = FORMAT_INFO[format].contentType;
    this.base = path.join(staging.dir, `${stem}.${FORMAT_INFO[format].ext}`);
    this.fd = openSync(this.partPath(1), 'w');
  }

  private partPath(part: number): string {
    return `${this.base}.${part}`;
  }

  write(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, PART_BYTES - this.partLen);
      writeSync(this.fd, bytes, at, n);
      this.partLen += n;
      at += n;
      if (this.partLen === PART_BYTES) this.nextPart();
    }
  }

  /** The part being filled is complete: part 1 stays for the end, later ones go up. */
  private nextPart(): void {
    closeSync(this.fd);
    if (this.part >= 2) this.send(this.part);
    this.part++;
    this.partLen = 0;
    this.fd = openSync(this.partPath(this.part), 'w');
  }

  /** Resolves once few enough parts wait for the store; rejects once a part failed for good. */
  async ready(): Promise<void> {
    while (this.waiting > MAX_WAITING_PARTS && !this.failure) await new Promise<void>((r) => this.waiters.push(r));
    if (this.failure) throw this.failure;
  }

  private bucket(): string {
    return this.store.buckets.output;
  }

  private describe(): string {
    return `${this.stem}${this.format === 'mp3' ? '' : ` (${this.format})`}`;
  }

  private send(part: number): void {
    this.waiting++;
    if (!this.uploadId) {
      this.uploadId = this.attempt(`start of the ${this.describe()} upload`, () =>
        this.store.client.initiateNewMultipartUpload(this.bucket(), this.key, { 'Content-Type': this.contentType }),
      );
      this.uploadId.catch(() => undefined); // its failure is met (and kept) below
    }
    const uploadId = this.uploadId;
    const file = this.partPath(part);
    const done = this.staging
      .run(async () => {
        if (this.failure) return;
        const id = await uploadId;
        const bytes = await readFile(file);
        const { etag } = await this.attempt(`part ${part} of the ${this.describe()} upload`, () =>
          this.store.client.uploadPart({ bucketName: this.bucket(), objectName: this.key, uploadID: id, partNumber: part, headers: {} }, bytes),
        );
        this.etags.push({ part, etag });
        unlinkSync(file);
      })
      .catch((err: unknown) => {
        this.failure ??= err instanceof Error ? err : new Error(String(err));
      })
      .finally(() => {
        this.waiting--;
        for (const w of this.waiters.splice(0)) w();
      });
    this.sent.push(done);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  /** Puts the head in place and completes the object under its name. */
  async finish(head: Uint8Array): Promise<void> {
    this.close();
    if (this.uploadId === null) {
      // Never passed two parts: one plain PUT of the whole (at most 10 MiB).
      const parts = await Promise.all(Array.from({ length: this.part }, (_, i) => readFile(this.partPath(i + 1))));
      const whole = Buffer.concat([head, ...parts]);
      await this.staging.run(() =>
        this.attempt(`upload of ${this.describe()}`, () => this.store.client.putObject(this.bucket(), this.key, whole, whole.length, { 'Content-Type': this.contentType })),
      );
      this.dropFiles();
      return;
    }
    if (this.partLen > 0) this.send(this.part);
    await Promise.all(this.sent);
    if (this.failure) throw this.failure;
    const uploadId = await this.uploadId;
    const part1 = Buffer.concat([head, await readFile(this.partPath(1))]);
    const { etag } = await this.staging.run(() =>
      this.attempt(`part 1 of the ${this.describe()} upload`, () =>
        this.store.client.uploadPart({ bucketName: this.bucket(), objectName: this.key, uploadID: uploadId, partNumber: 1, headers: {} }, part1),
      ),
    );
    const etags = [{ part: 1, etag }, ...this.etags].sort((a, b) => a.part - b.part);
    await this.attempt(`completion of the ${this.describe()} upload`, () => this.store.client.completeMultipartUpload(this.bucket(), this.key, uploadId, etags));
    this.dropFiles();
  }

  /** Gives up (the job failed or was taken away): the parts already stored are dropped. */
  async abort(): Promise<void> {
    this.failure ??= new Error('upload aborted');
    this.close();
    await Promise.all(this.sent);
    this.dropFiles();
    const started = this.uploadId;
    if (!started) return;
    const uploadId = await started.catch(() => null);
    if (uploadId) await this.store.client.abortMultipartUpload(this.bucket(), this.key, uploadId).catch(() => undefined);
  }

  private dropFiles(): void {
    for (let p = 1; p <= this.part; p++) rmSync(this.partPath(p), { force: true });
  }
}
