// The Xing/Info + LAME tag writer moved to common with the stem encoders (rest encodes mixes too).
export * from '@msaas/common/audio-encode/mp3-info-tag';
