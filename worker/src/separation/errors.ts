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

/** The model file is missing, unreadable or not the expected HTDemucs graph. Operator's fault. */
export class ModelFileError extends Error {
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(`model file ${path}: ${message}`, options);
    this.name = 'ModelFileError';
    this.path = path;
  }
}

/** The caller aborted a separation through its AbortSignal. */
export class SeparationAbortedError extends Error {
  constructor(message = 'separation aborted') {
    super(message);
    this.name = 'AbortError';
  }
}
