// Files: uploading them over HTTP (POST /upload with the session token,
// PROTOCOL.md "Files"), the tray of attachments above the composer, and
// how a message's files are shown: images as previews, anything else as a
// download chip. File URLs come from the server and are same-origin paths.

import { h, svgIcon } from './dom.js';
import { formatSize } from './format.js';

const FILE_ICON = 'M14 3H7a2 2 0 00-2 2v14a2 2 0 002 2h10a2 2 0 002-2V8zM14 3v5h5M9 13h6M9 17h4';
const CLOSE_ICON = 'M6 6l12 12M18 6L6 18';

// MAX_FILES is the server's limit of files on one message.
export const MAX_FILES = 10;

// fileURL accepts only the server's own /files/ paths.
function fileURL(f) {
  return typeof f.url === 'string' && f.url.startsWith('/files/') ? f.url : null;
}

// filesView renders a message's files.
export function filesView(files) {
  const items = [];
  files.forEach((f, i) => {
    const url = fileURL(f);
    if (!url) return;
    if (f.image) {
      items.push(h('a', {
        class: 'msg-image', href: url, target: '_blank', rel: 'noopener noreferrer', dataset: { fk: `f:${i}` },
        'aria-label': `${f.name} (image, ${formatSize(f.size)}): open in a new tab`, title: f.name,
      }, h('img', { src: url, alt: f.name, loading: 'lazy', decoding: 'async' })));
    } else {
      items.push(h('a', {
        class: 'file-chip', href: url, download: f.name, target: '_blank', rel: 'noopener noreferrer', dataset: { fk: `f:${i}` },
        'aria-label': `Download ${f.name} (${formatSize(f.size)})`,
      }, h('span', { class: 'file-icon', 'aria-hidden': 'true' }, svgIcon(FILE_ICON)),
      h('span', { class: 'file-text' },
        h('span', { class: 'file-name', text: f.name }),
        h('span', { class: 'file-size', text: formatSize(f.size) }))));
    }
  });
  return items.length ? h('div', { class: 'msg-files' }, ...items) : null;
}

// pendingFilesView lists the files of a message not yet acknowledged.
export function pendingFilesView(files) {
  return h('div', { class: 'msg-files' }, ...files.map((f) => h('span', { class: 'file-chip' },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, svgIcon(FILE_ICON)),
    h('span', { class: 'file-text' }, h('span', { class: 'file-name', text: f.name }), h('span', { class: 'file-size', text: formatSize(f.size) })))));
}

// uploadFile sends one file; it resolves to the server's file info, or
// rejects with an Error whose message is for people. XMLHttpRequest,
// unlike fetch, reports upload progress: onProgress(fraction).
export function uploadFile(file, token, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/upload?name=${encodeURIComponent(file.name || 'file')}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.responseType = 'json';
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      const body = xhr.response || {};
      if (xhr.status === 201 && body.id) return resolve(body);
      let message = body.message || `the server answered ${xhr.status}`;
      if (xhr.status === 401) message = 'your session has ended; sign in again';
      reject(new Error(message));
    });
    xhr.addEventListener('error', () => reject(new Error('the upload failed; check your connection')));
    xhr.addEventListener('abort', () => reject(new Error('cancelled')));
    xhr.send(file);
  });
}

// Attachments is the tray of files about to be sent with the next
// message, per conversation. Each uploads as soon as it is added.
export class Attachments {
  // token() returns the session token; onChange() is called whenever an
  // upload starts, progresses, ends or is removed.
  constructor(tray, { token, onChange }) {
    this.tray = tray;
    this.token = token;
    this.onChange = onChange;
    this.byKey = new Map(); // conversation key -> [item]
    this.key = null;
    this.seq = 0;
    this.maxBytes = 0; // the server's limit per file (authenticated.maxUploadBytes); 0: not known
  }

  items(key = this.key) {
    return this.byKey.get(key) || [];
  }

  switchTo(key) {
    this.key = key;
    this.render();
  }

  // add starts uploading files for the open conversation; it returns a
  // problem to show, or ''.
  add(files) {
    if (!this.key || !files.length) return '';
    const list = this.items();
    const room = MAX_FILES - list.length;
    const taken = [...files].slice(0, Math.max(0, room));
    for (const file of taken) {
      const item = {
        id: ++this.seq, file, name: file.name || 'file', size: file.size, image: /^image\/(png|jpeg|gif|webp)$/.test(file.type),
        status: 'uploading', progress: 0, info: null, error: '', preview: '',
      };
      if (item.image) item.preview = URL.createObjectURL(file);
      list.push(item);
      this.start(item);
    }
    this.byKey.set(this.key, list);
    this.render();
    this.onChange();
    return taken.length < files.length ? `A message takes at most ${MAX_FILES} files.` : '';
  }

  start(item) {
    if (this.maxBytes && item.size > this.maxBytes) {
      // Refused here, before a byte is sent: the server would only say so
      // after receiving the whole file.
      item.status = 'failed';
      item.error = `the file is larger than ${formatSize(this.maxBytes)}, the most this server takes`;
      return;
    }
    const token = this.token();
    if (!token) {
      item.status = 'failed';
      item.error = 'you are not signed in';
      return;
    }
    uploadFile(item.file, token, (p) => {
      item.progress = p;
      this.renderItem(item);
    }).then((info) => {
      item.status = 'done';
      item.info = info;
    }, (err) => {
      item.status = 'failed';
      item.error = err.message;
    }).finally(() => {
      this.render();
      this.onChange();
    });
  }

  remove(id) {
    for (const [key, list] of this.byKey) {
      const i = list.findIndex((it) => it.id === id);
      if (i < 0) continue;
      const [item] = list.splice(i, 1);
      if (item.preview) URL.revokeObjectURL(item.preview);
      if (!list.length) this.byKey.delete(key);
    }
    this.render();
    this.onChange();
  }

  // busy: an upload of the open conversation is still going.
  busy() {
    return this.items().some((it) => it.status === 'uploading');
  }

  // take returns the uploaded files of the open conversation and empties
  // its tray (failed ones go too: their chip said why).
  take() {
    const list = this.items();
    const done = list.filter((it) => it.status === 'done');
    for (const it of list) if (it.preview) URL.revokeObjectURL(it.preview);
    this.byKey.delete(this.key);
    this.render();
    return done.map((it) => it.info);
  }

  // clear forgets every tray, when the user signs out.
  clear() {
    for (const list of this.byKey.values()) for (const it of list) if (it.preview) URL.revokeObjectURL(it.preview);
    this.byKey.clear();
    this.render();
  }

  render() {
    const list = this.items();
    this.tray.hidden = list.length === 0;
    this.tray.replaceChildren(...list.map((item) => this.itemView(item)));
  }

  renderItem(item) {
    const el = this.tray.querySelector(`[data-upload="${item.id}"]`);
    if (!el) return;
    el.querySelector('.attachment-bar').style.width = `${Math.round(item.progress * 100)}%`;
    el.querySelector('.attachment-state').textContent = this.stateText(item);
  }

  stateText(item) {
    if (item.status === 'failed') return `Not uploaded: ${item.error}`;
    if (item.status === 'done') return formatSize(item.size);
    return `Uploading… ${Math.round(item.progress * 100)}%`;
  }

  itemView(item) {
    const thumb = item.preview
      ? h('img', { class: 'attachment-thumb', src: item.preview, alt: '' })
      : h('span', { class: 'file-icon', 'aria-hidden': 'true' }, svgIcon(FILE_ICON));
    const bar = h('span', { class: 'attachment-bar', 'aria-hidden': 'true' });
    bar.style.width = `${Math.round(item.progress * 100)}%`;
    return h('li', { class: `attachment is-${item.status}`, dataset: { upload: String(item.id) } },
      thumb,
      h('span', { class: 'attachment-text' },
        h('span', { class: 'attachment-name', text: item.name }),
        h('span', { class: 'attachment-state', role: item.status === 'failed' ? 'alert' : null, text: this.stateText(item) })),
      h('button', {
        type: 'button', class: 'icon-btn icon-btn-sm', 'aria-label': `Remove ${item.name}`, title: 'Remove',
        onclick: () => this.remove(item.id),
      }, svgIcon(CLOSE_ICON)),
      bar);
  }
}
