/**
 * A stereo 16-bit WAV of two sines (left and right at different pitches), made in a blink: a long
 * input for the worker without synthesizing and encoding a song. `seed` shifts the pitches, so
 * each call with another seed is another song (another songhash).
 */
export function sineWav(seconds: number, seed = 1, rate = 44100): Buffer {
  const n = Math.round(seconds * rate);
  const buf = Buffer.alloc(44 + n * 4);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + n * 4, 4);
  buf.write('WAVE', 8);
  buf.write('fmt ', 12);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(2, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 4, 28);
  buf.writeUInt16LE(4, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(n * 4, 40);
  const fl = 220 + 10 * seed;
  const fr = 330 + 7 * seed;
  for (let i = 0; i < n; i++) {
    buf.writeInt16LE(Math.round(12_000 * Math.sin((2 * Math.PI * fl * i) / rate)), 44 + 4 * i);
    buf.writeInt16LE(Math.round(9_000 * Math.sin((2 * Math.PI * fr * i) / rate)), 46 + 4 * i);
  }
  return buf;
}
