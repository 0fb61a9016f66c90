// The stem encoders live in common (shared with rest's custom mixes): MP3 (LAME), 24-bit WAV and FLAC.
export * from '@msaas/common/audio-encode/index';
