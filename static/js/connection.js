// Connection owns the WebSocket: it opens it, decodes frames, and when
// the socket closes for any reason it reconnects with exponential backoff
// and jitter, until stop() is called. Signing in is the app's business.

// Backoff: the first retry comes after about BASE_MS, each later one waits
// twice as long up to MAX_MS; every delay is jittered to 50-100% so that
// clients dropped together (a server restart) do not return together.
const BASE_MS = 500;
const MAX_MS = 30000;

// Close codes the server uses (PROTOCOL.md, "Close codes").
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001; // server restarting
export const CLOSE_TRY_AGAIN = 1013; // this connection fell behind

export class Connection {
  // handlers: onOpen(), onFrame(type, data), onClose(event),
  // onStatus(status). status is { state, retryAt, code } where state is
  // 'connecting', 'open', 'waiting' (retry scheduled) or 'stopped'.
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.ws = null;
    this.attempt = 0;
    this.timer = 0;
    this.stopped = true;
    this.status = { state: 'stopped', retryAt: 0, code: 0 };
    this.outage = 0; // close code that ended the last open socket, until one opens again
    window.addEventListener('online', () => this.retrySoon());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retrySoon();
    });
  }

  start() {
    this.stopped = false;
    if (!this.ws) this.open();
  }

  // stop closes the socket for good (until start).
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(CLOSE_NORMAL);
    this.setStatus('stopped');
  }

  get isOpen() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  // healthy resets the backoff; the app calls it once it has signed in,
  // so a server that accepts and then drops connections still backs off.
  healthy() {
    this.attempt = 0;
  }

  send(type, data = {}) {
    if (!this.isOpen) return false;
    this.ws.send(JSON.stringify({ type, data }));
    return true;
  }

  // reconnectNow skips the wait of a scheduled retry.
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.open();
  }

  // retrySoon cuts a long wait short when the network or the tab comes
  // back, keeping a little jitter.
  retrySoon() {
    if (this.stopped || this.ws || this.status.state !== 'waiting') return;
    if (this.status.retryAt - Date.now() < 1000) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), 200 + Math.random() * 500);
  }

  open() {
    this.setStatus('connecting', this.status.code);
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.scheduleRetry(this.outage);
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.outage = 0;
      this.setStatus('open');
      this.handlers.onOpen?.();
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        console.warn('parley: ignoring a frame that is not JSON');
        return;
      }
      if (frame && typeof frame.type === 'string') this.handlers.onFrame(frame.type, frame.data || {});
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // The close that began an outage says why (1001: a restart); the
      // failed attempts after it only say the server is not there yet.
      if (!this.outage) this.outage = ev.code;
      this.handlers.onClose?.(ev);
      if (!this.stopped) this.scheduleRetry(this.outage);
    });
  }

  scheduleRetry(code) {
    const ceiling = Math.min(MAX_MS, BASE_MS * 2 ** this.attempt);
    const delay = ceiling * (0.5 + Math.random() * 0.5);
    this.attempt++;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
    this.setStatus('waiting', code, Date.now() + delay);
  }

  setStatus(state, code = 0, retryAt = 0) {
    this.status = { state, code, retryAt };
    this.handlers.onStatus?.(this.status);
  }
}

export function socketURL(loc = window.location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}
