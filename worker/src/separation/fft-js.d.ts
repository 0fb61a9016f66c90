// fft.js ships no types. Arrays may be any indexable numeric storage; we pass Float64Arrays.
declare module 'fft.js' {
  type NumArray = number[] | Float64Array | Float32Array;
  export default class FFT {
    constructor(size: number);
    readonly size: number;
    createComplexArray(): number[];
    /** Complex forward DFT (e^{-i...}), interleaved re/im in and out. */
    transform(out: NumArray, data: NumArray): void;
    /** Forward DFT of a real signal: fills bins 0..size/2 of `out` (interleaved). */
    realTransform(out: NumArray, data: NumArray): void;
    completeSpectrum(spectrum: NumArray): void;
    /** Complex inverse DFT, divided by size. */
    inverseTransform(out: NumArray, data: NumArray): void;
  }
}
