/** Every stem encoder (MP3, WAV, FLAC): fed chunk by chunk, the file's bytes at the end (or, streaming, handed over as made). */
export interface StemEncoder {
  encode(channels: readonly Float32Array[]): void;
  finish(): Uint8Array;
}
