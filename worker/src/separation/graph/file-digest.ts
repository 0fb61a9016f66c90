// Digests of the large files behind the graph cache: the weights (the cache key) and a cached
// graph (what its validation record vouches for), and the memo that spares reading the weights
// at every start — keyed by what a copy of the file keeps (a new container, a read-only layer),
// not by its device, inode or ctime.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sourceDigest } from './optimize.ts';

/** Writes `bytes` to `file` via a temporary file in the same directory and a rename (never a torn file). */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** sha-256 (hex) of a file, streamed (no copy of a 174 MB graph in memory). */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Blocks read for the content check: 64 evenly spread blocks of 16 KiB (1 MiB of 174 MB; the whole of a small file). */
const SAMPLE_BLOCKS = 64;
const SAMPLE_BYTES = 16 * 1024;

/**
 * What identifies the weights across copies: size, mtime (kept by `docker build` layers, `cp -a`,
 * tar) and a sha-256 of sampled blocks, first and last included — a rewrite of the file changes
 * its mtime, and a same-size replacement with the mtime set back still has to match the samples.
 */
export async function weightsIdentity(file: string): Promise<string> {
  const s = await stat(file, { bigint: true });
  const size = Number(s.size);
  const hash = createHash('sha256');
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(SAMPLE_BYTES);
    const blocks = Math.ceil(size / SAMPLE_BYTES);
    const picks = blocks <= SAMPLE_BLOCKS ? blocks : SAMPLE_BLOCKS;
    for (let i = 0; i < picks; i++) {
      const block = blocks <= SAMPLE_BLOCKS ? i : Math.round((i * (blocks - 1)) / (SAMPLE_BLOCKS - 1));
      const { bytesRead } = await fh.read(buf, 0, SAMPLE_BYTES, block * SAMPLE_BYTES);
      hash.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return `v2:${s.size}:${s.mtimeNs}:${hash.digest('hex')}`;
}

/** `<weights>.sha256.json`: the weights' digest and the identity it was computed for. */
export const digestMemoName = (modelPath: string): string => `${path.basename(modelPath)}.sha256.json`;

interface DigestMemo {
  identity: string;
  sha256: string;
}

/**
 * The weights' sha-256 without reading 174 MB at every start: memoized in any of `dirs` (the
 * image's build writes it beside the weights) for the identity it was computed from; computed —
 * and the memo written to `writableDir()`, best effort — when no memo matches. `source` is set
 * when the file had to be read.
 */
export async function weightsDigest(modelPath: string, dirs: string[], writableDir: () => Promise<string>): Promise<{ sha256: string; source?: Uint8Array }> {
  const identity = await weightsIdentity(modelPath);
  const name = digestMemoName(modelPath);
  for (const dir of dirs) {
    try {
      const memo = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Partial<DigestMemo>;
      if (memo.identity === identity && typeof memo.sha256 === 'string' && /^[0-9a-f]{64}$/.test(memo.sha256)) return { sha256: memo.sha256 };
    } catch {
      // no memo there
    }
  }
  const source = await readFile(modelPath);
  const sha256 = sourceDigest(source);
  // a file replaced while it was read gets no memo: the next start reads it again
  if ((await weightsIdentity(modelPath)) === identity) {
    try {
      await writeFileAtomic(path.join(await writableDir(), name), JSON.stringify({ identity, sha256 } satisfies DigestMemo));
    } catch {
      // unwritable: the digest is computed at every start
    }
  }
  return { sha256, source };
}
