/**
 * Why an upload cannot be separated. The client's fault: never retried. `unsupported_format`: the
 * bytes are not one of the formats taken (common/src/audio-format.ts), and the sentence names what
 * they are; `not_mp3`: bytes that looked like an MP3 hold no MPEG audio frames (the frame scan's verdict).
 */
export type AudioInputErrorCode = 'unsupported_format' | 'not_mp3' | 'corrupt' | 'empty' | 'too_long';

/** Bad audio from the client (not a format we take, corrupt, empty, too long). */
export class AudioInputError extends Error {
  readonly code: AudioInputErrorCode;
  constructor(code: AudioInputErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AudioInputError';
    this.code = code;
  }
}
