/**
 * A mix thread's body (started by mix-thread.mjs, driven by mix-threads.ts): the CPU of custom mixes
 * — their stems' decoders, the sum, the encoders — off the request thread. The request thread only
 * moves bytes: stored stem bytes in (on request, so a stem is read as fast as it is decoded), encoded
 * bytes out (one block at a time, the next when the client has taken them). A thread runs several
 * mixes, interleaved block by block.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { Readable } from 'node:stream';
import { MPEGDecoder } from 'mpg123-decoder';
import { FLACDecoder } from '@wasm-audio-decoders/flac';
import { createStemEncoder, DEFAULT_MP3 } from '@msaas/common/audio-encode/index';
import { StemPuller, type Stereo } from './stem-decode.ts';
import type { FromMixThread, ToMixThread } from './mix-protocol.ts';

const SAMPLE_RATE = 44_100;
/** Samples per channel mixed and encoded at a time (0.25 s): the unit of the client's flow control. */
const BLOCK = 11_025;

/**
 * The thread's niceness: below the request thread (0), so that on a busy machine requests are
 * accepted and answered first and the mixes take what is left (Linux schedules threads one by one;
 * nice 10 weighs ~1/10 of nice 0). A process may always lower its own threads' priority.
 */
const MIX_NICE = 10;
try {
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), MIX_NICE);
} catch {
  // not Linux: the thread keeps the process's priority
}

const port = parentPort!;
const post = (m: FromMixThread): void => port.postMessage(m);

interface Running {
  streams: Readable[];
  pullers: StemPuller[];
  stopped: boolean;
  go: (() => void) | null;
}
const running = new Map<number, Running>();

/** Resolves when the request thread says `go` (false: the mix was stopped). */
const nextGo = (r: Running): Promise<boolean> => (r.stopped ? Promise.resolve(false) : new Promise((resolve) => (r.go = () => resolve(!r.stopped))));

async function render(start: Extract<ToMixThread, { type: 'start' }>, r: Running): Promise<void> {
  const id = start.id;
  let pending: Uint8Array[] = [];
  // The encoder's bytes are its own until its next call: copied as they are queued.
  const encoder = await createStemEncoder(start.format, SAMPLE_RATE, 2, start.vbr, { totalSamples: start.total, onBytes: (b) => void pending.push(b.slice()) });
  const send = (last: boolean): void => {
    post({ type: 'out', id, bytes: pending, last });
    pending = [];
  };
  send(false); // the header (an MP3's Info tag, a WAV's or FLAC's head) leads
  if (!(await nextGo(r))) return;
  const mix: Stereo = [new Float32Array(BLOCK), new Float32Array(BLOCK)];
  for (let done = 0; done < start.total; ) {
    const n = Math.min(BLOCK, start.total - done);
    mix[0].fill(0);
    mix[1].fill(0);
    for (const p of r.pullers) await p.addInto(mix, n);
    if (r.stopped) return;
    encoder.encode([mix[0].subarray(0, n), mix[1].subarray(0, n)]);
    done += n;
    send(false);
    if (!(await nextGo(r))) return;
  }
  encoder.finish();
  send(true);
}

function start(m: Extract<ToMixThread, { type: 'start' }>): void {
  const streams = m.gains.map((_, stem) => new Readable({ read: () => post({ type: 'need', id: m.id, stem }) }));
  const r: Running = { streams, pullers: streams.map((s, i) => new StemPuller(s, m.ext, m.gains[i]!)), stopped: false, go: null };
  running.set(m.id, r);
  void render(m, r)
    .catch((err: unknown) => {
      if (!r.stopped) post({ type: 'failed', id: m.id, message: err instanceof Error ? err.message : String(err) });
    })
    .finally(async () => {
      r.stopped = true;
      await Promise.all(r.pullers.map((p) => p.close()));
      running.delete(m.id);
      post({ type: 'ended', id: m.id });
    });
}

port.on('message', (m: ToMixThread) => {
  if (m.type === 'start') return start(m);
  const r = running.get(m.id);
  if (!r) return;
  switch (m.type) {
    case 'bytes':
      if (!r.stopped) r.streams[m.stem]?.push(m.chunk);
      return;
    case 'read-error':
      r.streams[m.stem]?.destroy(new Error(m.message));
      return;
    case 'stop':
      r.stopped = true;
      for (const p of r.pullers) p.destroy();
      break;
    case 'go':
      break;
  }
  const go = r.go;
  r.go = null;
  go?.();
});

// The codecs compiled before the first mix (a WebAssembly module compiles once per thread).
const mp3 = new MPEGDecoder({ enableGapless: true });
const flac = new FLACDecoder();
await Promise.all([mp3.ready, flac.ready]);
mp3.free();
flac.free();
for (const format of ['mp3', 'flac'] as const) (await createStemEncoder(format, SAMPLE_RATE, 2, DEFAULT_MP3)).finish();
post({ type: 'ready' });
