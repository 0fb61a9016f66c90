/**
 * The separate command, imported by cli.ts once the process runs with huge pages. Command line:
 * `npm run separate -- song.mp3 -o outdir [--overlap 0.25] [--threads N]`; the input may be any
 * supported format (MP3, WAV, FLAC, Ogg Vorbis/Opus, M4A/AAC), told by its content. Writes outdir/<name>-<stem>.<ext> for the default stems, or for `--stems` (e.g. vocals,instrumental),
 * in `--format` (one of FORMAT_INFO's, formats.ts; default mp3). Each file is written as it is
 * encoded (memory flat in the song's length); `--progressive` writes 24-bit WAV files whose header is
 * patched after every chunk, so a desktop tool can open them while they grow. Exit codes: 0 ok, 1 usage or unexpected
 * failure, 2 bad input audio, 3 model file problem. Errors are one line on stderr.
 */
import { closeSync, createReadStream, createWriteStream, openSync, unlinkSync, writeSync } from 'node:fs';
import { readFile, mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  createEngine, probeAudio, AudioInputError, ModelFileError, DEFAULT_MAX_DURATION_SEC, DEFAULT_OUTPUT, type EngineOptions, type OutputSink, type OutputSpec,
} from './separation/index.ts';
import { WAV_HEADER_BYTES, wavHeader } from '@msaas/common/audio-encode/index';
import { DEFAULT_OUTPUT_FORMAT, FORMAT_INFO, OUTPUT_FORMATS, QUALITY_PROFILES, STEMS, isOutputFormat, isQualityProfile, isStem, loadConfig, orderedStems, type Config } from '@msaas/common';

const USAGE = `usage: npm run separate -- <song.mp3|.wav|.flac|.ogg|.opus|.m4a> -o <outdir> [--overlap 0.25] [--threads N]
        [--format ${OUTPUT_FORMATS.join('|')}] [--stems ${STEMS.join(',')}]
        [--model path.onnx] [--no-memory-arena] [--original-graph] [--profile exact|int8-transformer]
        [--max-duration SEC] [--vbr 0-9 | --bitrate KBPS] [--progressive] [--quiet]
--progressive: 24-bit WAV files that are valid at every moment and grow chunk by chunk (~5.85 s of audio each),
     so a DAW or player can start on a song before it is separated (implies --format wav)
env: MODEL_PATH (weights), ORT_MEMORY_ARENA=0 (lean: ~0.7 GB less peak RSS, ~15 % slower),
     QUALITY_PROFILE=int8-transformer (the transformer's products in int8: faster, approximate),
     ORT_GRAPH=original (the weights' graph as is, not the cached rewrite), MODEL_CACHE_DIR (where the rewrite is cached
     when the weights' directory is not writable), MALLOC_HUGEPAGES=0 (no re-exec with glibc.malloc.hugetlb=1)`;

class UsageError extends Error {}

function num(value: string | undefined, name: string, check: (n: number) => boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`invalid --${name}: ${value}`);
  return n;
}

/** `--format` and `--stems`: what to write (default the lab's four VBR MP3 stems). */
function outputSpec(format: string | undefined, stems: string | undefined): OutputSpec {
  if (format !== undefined && !isOutputFormat(format)) throw new UsageError(`invalid --format: ${format} (${OUTPUT_FORMATS.join(', ')})`);
  const names = stems === undefined ? [...DEFAULT_OUTPUT.stems] : stems.split(',').map((s) => s.trim());
  const bad = names.filter((n) => !isStem(n));
  if (names.length === 0 || bad.length > 0) throw new UsageError(`invalid --stems: ${stems} (any of ${STEMS.join(', ')})`);
  return { formats: [format ?? DEFAULT_OUTPUT_FORMAT], stems: orderedStems(names.filter(isStem)) };
}

function parse(
  argv: string[],
  env: Pick<Config, 'MODEL_PATH' | 'ORT_MEMORY_ARENA' | 'ORT_GRAPH' | 'MODEL_CACHE_DIR' | 'QUALITY_PROFILE'>,
): { input: string; outDir: string; quiet: boolean; progressive: boolean; output: OutputSpec; engine: EngineOptions } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      overlap: { type: 'string' },
      threads: { type: 'string' },
      model: { type: 'string' },
      'memory-arena': { type: 'boolean' },
      'no-memory-arena': { type: 'boolean' },
      'original-graph': { type: 'boolean' },
      profile: { type: 'string' },
      'max-duration': { type: 'string' },
      vbr: { type: 'string' },
      bitrate: { type: 'string' },
      format: { type: 'string' },
      stems: { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
      progressive: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length !== 1) throw new UsageError('expected exactly one input file');
  if (!values.output) throw new UsageError('missing -o <outdir>');
  const bitrate = num(values.bitrate, 'bitrate', (n) => n > 0);
  const vbr = num(values.vbr, 'vbr', (n) => n >= 0 && n <= 9);
  const profile = values.profile ?? env.QUALITY_PROFILE;
  if (profile !== undefined && !isQualityProfile(profile)) throw new UsageError(`invalid --profile: ${profile} (${QUALITY_PROFILES.join(', ')})`);
  const progressive = values.progressive ?? false;
  if (progressive && values.format !== undefined && values.format !== 'wav') throw new UsageError(`--progressive writes growing WAV files: it cannot write --format ${values.format}`);
  if (profile !== undefined && profile !== 'exact' && values['original-graph']) throw new UsageError(`--profile ${profile} is a rewrite of the graph: it cannot run with --original-graph`);
  return {
    input: positionals[0],
    outDir: values.output,
    quiet: values.quiet ?? false,
    progressive,
    output: outputSpec(progressive ? 'wav' : values.format, values.stems),
    engine: {
      modelPath: values.model ?? env.MODEL_PATH,
      threads: num(values.threads, 'threads', (n) => Number.isInteger(n) && n >= 1),
      overlap: num(values.overlap, 'overlap', (n) => n >= 0 && n < 1),
      maxDurationSec: num(values['max-duration'], 'max-duration', (n) => n > 0),
      memoryArena: values['no-memory-arena'] ? false : values['memory-arena'] ?? env.ORT_MEMORY_ARENA,
      mp3: bitrate !== undefined ? { bitrate } : vbr !== undefined ? { vbrQuality: vbr } : undefined,
      graph: values['original-graph'] ? 'original' : env.ORT_GRAPH,
      profile,
      graphCacheDir: env.MODEL_CACHE_DIR,
      onWarning: (m: string) => console.error(`warning: ${m}`),
    },
  };
}

/**
 * One output file written as it is encoded. A head of fixed size (WAV 44 bytes, FLAC STREAMINFO 42)
 * is reserved and written in place at the end; an MP3's Info tag frame varies in size, so its body
 * goes to `<file>.body` and the file is put together at the end. `growing` (WAV only): the header is
 * rewritten after every chunk, so the file is a valid WAV of what is final so far.
 */
class FileSink implements OutputSink {
  private readonly fd: number;
  private readonly bodyPath: string | null;
  private written = 0;

  constructor(
    readonly file: string,
    private readonly reserve: number | null,
    private readonly growing: boolean,
  ) {
    this.bodyPath = reserve === null ? `${file}.body` : null;
    this.fd = openSync(this.bodyPath ?? file, 'w');
    if (reserve !== null) writeSync(this.fd, growing ? wavHeader(44100, 2, 0) : new Uint8Array(reserve), 0, reserve, 0);
  }

  write(bytes: Uint8Array): void {
    writeSync(this.fd, bytes, 0, bytes.length, (this.reserve ?? 0) + this.written);
    this.written += bytes.length;
  }

  async ready(): Promise<void> {
    if (this.growing) writeSync(this.fd, wavHeader(44100, 2, this.written / 6), 0, WAV_HEADER_BYTES, 0);
  }

  async finish(head: Uint8Array): Promise<void> {
    if (this.reserve !== null) {
      if (head.length !== this.reserve) throw new Error(`internal: a ${head.length}-byte head for a ${this.reserve}-byte reserve`);
      writeSync(this.fd, head, 0, head.length, 0);
      closeSync(this.fd);
      return;
    }
    closeSync(this.fd);
    const out = createWriteStream(this.file);
    out.write(head);
    await pipeline(createReadStream(this.bodyPath!), out);
    unlinkSync(this.bodyPath!);
  }
}

/** Bytes of a file's header that --progressive patches as the file grows, by codec (MP3: none). */
const HEAD_BYTES: Record<string, number | null> = { wav: WAV_HEADER_BYTES, flac: 42 };

function progressBar(quiet: boolean): (fraction: number) => void {
  if (quiet) return () => {};
  const started = Date.now();
  let lastPct = -1;
  return (f) => {
    const pct = Math.floor(f * 100);
    if (pct === lastPct) return;
    lastPct = pct;
    const width = 30;
    const filled = Math.round(f * width);
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    const line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(pct).padStart(3)}% ${secs}s`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${f >= 1 ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

async function main(): Promise<number> {
  let args;
  let config: Config;
  try {
    // The environment through the one validated config (MODEL_PATH, ORT_MEMORY_ARENA, ORT_GRAPH, QUALITY_PROFILE, MODEL_CACHE_DIR).
    config = loadConfig(process.env);
    args = parse(process.argv.slice(2), config);
  } catch (err) {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 1;
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(args.input));
  } catch (err) {
    console.error(`error: cannot read ${args.input}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    return 2;
  }
  // Refuse bad input before paying for the model load: the format from the content, the length from its header.
  const probe = probeAudio(bytes);
  const max = args.engine.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC;
  if (probe.durationSec !== null && probe.durationSec > max) {
    throw new AudioInputError('too_long', `the song is ${Math.round(probe.durationSec)} s long; the maximum is ${max} s`);
  }
  const engine = await createEngine(args.engine);
  try {
    await mkdir(args.outDir, { recursive: true });
    const base = path.basename(args.input, path.extname(args.input));
    const sinks: FileSink[] = [];
    const open = (stem: string, format: keyof typeof FORMAT_INFO): FileSink => {
      const sink = new FileSink(path.join(args.outDir, `${base}-${stem}.${FORMAT_INFO[format].ext}`), HEAD_BYTES[FORMAT_INFO[format].encoder.codec] ?? null, args.progressive);
      sinks.push(sink);
      return sink;
    };
    const { files } = await engine.separateToSinks(bytes, args.output, open, { onProgress: progressBar(args.quiet) });
    for (const [i, { head }] of files.entries()) {
      await sinks[i]!.finish(head);
      if (!args.quiet) console.log(sinks[i]!.file);
    }
    return 0;
  } finally {
    await engine.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof AudioInputError) console.error(`error: bad input (${err.code}): ${message}`);
    else if (err instanceof ModelFileError) console.error(`error: ${message}`);
    else console.error(`error: ${message.split('\n')[0]}`);
    process.exit(err instanceof AudioInputError ? 2 : err instanceof ModelFileError ? 3 : 1);
  },
);
