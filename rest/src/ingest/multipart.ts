import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import multer from 'multer';
import { incomingKey, type ObjectStore } from '@msaas/common';
import { ingest, type IngestLimits, type Ingested } from './ingest.ts';

/** A file that streamed to the store: where it waits (`incoming/…`) and what was learnt of it. */
export interface Staged extends Ingested {
  key: string;
}

/** The multipart file as this storage leaves it on `req.file`. */
export type StagedFile = Express.Multer.File & { staged: Staged };

/**
 * multer's storage for POST /apiv1/separate: the file streams through `ingest` into the queue bucket
 * under `incoming/<random>` (the songhash is known only at its end) instead of into memory. multer
 * keeps its limits (fileSize → 413) and its error handling; a refused file leaves nothing stored.
 */
export class IngestStorage implements multer.StorageEngine {
  constructor(
    private readonly store: ObjectStore,
    private readonly limits: IngestLimits,
  ) {}

  _handleFile(_req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<StagedFile>) => void): void {
    const key = incomingKey(randomUUID());
    const sink = this.store.streamUpload(key);
    ingest(file.stream, this.limits, sink).then(
      (ingested) => cb(null, { size: ingested.size, staged: { ...ingested, key } }),
      (err: unknown) => {
        // The rest of the file is read off (and dropped) by multer, which answers once the request has ended.
        file.stream.resume();
        cb(err);
      },
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void): void {
    const staged = (file as Partial<StagedFile>).staged;
    if (!staged || staged.held) return cb(null);
    this.store.removeStaged(staged.key).then(
      () => cb(null),
      () => cb(null),
    );
  }
}
