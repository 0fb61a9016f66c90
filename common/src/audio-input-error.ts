/** Why an upload cannot be separated. The client's fault: never retried. */
export type AudioInputErrorCode = 'not_mp3' | 'corrupt' | 'empty' | 'too_long';

/** Bad audio from the client (not an MP3, corrupt, empty, too long). */
export class AudioInputError extends Error {
  readonly code: AudioInputErrorCode;
  constructor(code: AudioInputErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AudioInputError';
    this.code = code;
  }
}
