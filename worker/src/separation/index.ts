// The separation engine's public surface: MP3 in, four MP3 stems out.
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
} from './engine.ts';
export { decodeMp3, PcmStream, MODEL_SAMPLE_RATE, DEFAULT_MAX_DURATION_SEC } from './decode.ts';
export { encodeMp3, createMp3StreamEncoder, DEFAULT_MP3, type Mp3Quality } from './encode.ts';
export { scanMp3, type Mp3Scan } from '@msaas/common';
export { Spectrogram } from './stft.ts';
export { defaultModelPath, SEGMENT } from './model.ts';
