// The separation engine's public surface: audio in (MP3, WAV, FLAC, Ogg Vorbis/Opus, M4A/AAC), four stems out.
export { TRACKS, type Track } from '@msaas/common';
export { AudioInputError, ModelFileError, SeparationAbortedError, type AudioInputErrorCode } from './errors.ts';
export {
  createEngine,
  ENGINE_SESSION_DEFAULTS,
  type Engine,
  type DetailedEngine,
  type EngineOptions,
  type SeparateOptions,
  type FloatStems,
  type SeparationStats,
  type Separated,
  type OutputSpec,
  type StemFile,
  type StreamedFile,
  type OutputSink,
  type SeparatedPiece,
  type RangeInput,
  type RangeOutput,
  DEFAULT_OUTPUT,
} from './engine.ts';
export { decodeMp3, PcmStream, MODEL_SAMPLE_RATE, DEFAULT_MAX_DURATION_SEC } from './decode.ts';
export { decodeAudio, openAudioStream, openUploadStream, type AudioStream } from './decode-audio.ts';
export { encodeMp3, createMp3StreamEncoder, createStemEncoder, DEFAULT_MP3, type Mp3Quality, type StemEncoder } from '@msaas/common/audio-encode/index';
export { scanMp3, probeAudio, sniffAudioFormat, ACCEPTED_FORMATS, type Mp3Scan, type AudioFormat, type AudioProbe } from '@msaas/common';
export { Spectrogram } from './stft.ts';
export { defaultModelPath, SEGMENT } from './model.ts';
export { cachedOptimizedGraph } from './graph/optimized-model.ts';
export { QUALITY_PROFILES, DEFAULT_PROFILE, isQualityProfile, type QualityProfile } from '@msaas/common';
export { stitchOverlap, transitionWeight, strideFor } from './chunking.ts';
