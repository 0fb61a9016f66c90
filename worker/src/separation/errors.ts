export { AudioInputError, type AudioInputErrorCode } from '@msaas/common';

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
