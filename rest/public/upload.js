// @ts-check
// The upload card: file picker and drop-anywhere, upload progress and Cancel, errors in plain words.
// Says `submitted` when the server accepted a file; listens for the server info (upload limit).
import { ApiError, formatBytes, uploadSong } from './api.js';
import { sniffFile } from './sniff.js';
import { announce, byId, messageOf } from './ui.js';
import { fillFormatSelect } from './formats.js';

/** @typedef {import('./page-bus.js').Bus} Bus */
/** @typedef {'idle' | 'uploading' | 'done' | 'error'} UploadState */

/** @param {Bus} bus */
export function setupUpload(bus) {
  const el = byId({
    upload: HTMLElement, dropzone: HTMLLabelElement, file: HTMLInputElement, limitHint: HTMLElement,
    uploadStatus: HTMLElement, uploadName: HTMLElement, uploadPct: HTMLElement,
    uploadProgress: HTMLProgressElement, uploadCancel: HTMLButtonElement, uploadError: HTMLElement,
    uploadFormat: HTMLSelectElement,
  });
  /** @type {number | undefined} from the server info */
  let maxUploadMb;
  /** @type {{ abort: () => void } | null} */
  let current = null;

  /** @param {UploadState} s */
  const setState = (s) => { el.upload.dataset.state = s; };

  /** @param {string} msg */
  const showError = (msg) => {
    el.uploadError.textContent = msg;
    el.uploadError.hidden = false;
    setState('error');
  };

  const clearError = () => {
    el.uploadError.hidden = true;
    el.uploadError.textContent = '';
  };

  /** @param {File} file */
  async function start(file) {
    current?.abort();
    clearError();
    const maxMb = maxUploadMb;
    if (maxMb && file.size > maxMb * 1024 * 1024) {
      showError(`“${file.name}” is ${formatBytes(file.size)}; this server accepts files up to ${maxMb} MB. Try a shorter song or a compressed format (MP3, Ogg, M4A).`);
      return;
    }
    if (file.size === 0) {
      showError(`“${file.name}” is empty. Choose an MP3, WAV, FLAC, Ogg or M4A file.`);
      return;
    }
    // The first bytes say what the file is: a wrong file is refused before it is uploaded.
    const sniffed = await sniffFile(file);
    if (sniffed.kind === null) {
      showError(`“${file.name}” isn’t an audio file (it looks like ${sniffed.looksLike}). Choose an MP3, WAV, FLAC, Ogg or M4A file.`);
      el.file.value = '';
      return;
    }
    setState('uploading');
    el.uploadStatus.hidden = false;
    el.uploadName.textContent = `${file.name} · ${formatBytes(file.size)}`;
    el.uploadProgress.value = 0;
    el.uploadPct.textContent = '0%';
    announce(`Uploading ${file.name}`);
    const upload = uploadSong(file, {
      maxUploadMb: maxMb,
      format: el.uploadFormat.value,
      onProgress: (f) => {
        el.uploadProgress.value = f;
        el.uploadPct.textContent = f >= 1 ? 'Checking…' : `${Math.round(f * 100)}%`;
      },
    });
    current = upload;
    try {
      const response = await upload.done;
      setState('done');
      el.uploadStatus.hidden = true;
      bus.emit('submitted', { name: file.name, response });
    } catch (err) {
      el.uploadStatus.hidden = true;
      if (err instanceof ApiError && err.code === 'aborted') {
        setState('idle');
        announce('Upload cancelled');
      } else {
        showError(`“${file.name}”: ${messageOf(err)}`);
      }
    } finally {
      if (current === upload) current = null;
      el.file.value = '';
    }
  }

  el.file.addEventListener('change', () => {
    const file = el.file.files?.[0];
    if (file) void start(file);
  });
  el.uploadCancel.addEventListener('click', () => current?.abort());

  // Dropping anywhere on the page works; the drop zone lights up while a file is dragged in.
  let depth = 0;
  /** @param {DragEvent} e */
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  document.addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    el.dropzone.dataset.drag = 'true';
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) el.dropzone.dataset.drag = 'false';
  });
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    el.dropzone.dataset.drag = 'false';
    const files = e.dataTransfer?.files;
    if (!files || files.length === 0) return;
    if (files.length > 1) announce('Only the first file is uploaded');
    void start(files[0]);
  });

  bus.on('info', (info) => {
    maxUploadMb = info.maxUploadMb;
    fillFormatSelect(el.uploadFormat, info.formats, (f) => f.label, el.uploadFormat.value || info.defaultFormat);
    el.limitHint.textContent = `WAV, FLAC, Ogg, M4A or MP3 up to ${info.maxUploadMb} MB · split into ${info.tracks.join(', ')}`;
  });
  bus.on('infoFailed', ({ message }) => {
    el.limitHint.textContent = 'MP3, WAV, FLAC, Ogg (Vorbis, Opus) or M4A (AAC)';
    showError(message);
    setState('idle');
  });
  bus.on('apiKey', clearError);
  // The song card is gone: hand focus back to where the next song starts.
  bus.on('deleted', ({ from }) => {
    if (from === 'song') el.file.focus();
  });
}
