// What the client remembers in localStorage: the session token (shared by
// the tabs of this browser, so a reload or a new tab signs in by itself)
// and, per user, small preferences. Storage can be unavailable (private
// modes, quotas); the client then simply forgets.

const TOKEN = 'parley.token';
const NOTIFY = 'parley.notify';

function get(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function set(key, value) {
  try {
    if (value == null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Not persisted; the session still works until the page closes.
  }
}

export const TOKEN_KEY = TOKEN;
export const loadToken = () => get(TOKEN);
export const saveToken = (token) => set(TOKEN, token);
export const notificationsWanted = () => get(NOTIFY) === '1';
export const setNotificationsWanted = (on) => set(NOTIFY, on ? '1' : null);

// tabId names this tab for the outbox; sessionStorage keeps it across
// reloads of the tab, and only there.
function tabId() {
  try {
    let id = sessionStorage.getItem('parley.tab');
    if (!id) {
      id = Math.random().toString(36).slice(2, 10);
      sessionStorage.setItem('parley.tab', id);
    }
    return id;
  } catch {
    return 'tab';
  }
}

// OUTBOX_STALE_MS: a tab refreshes its outbox entry every
// OUTBOX_BEAT_MS while it has unsent messages; an entry older than
// OUTBOX_STALE_MS belongs to a tab that is gone, and another adopts it.
const OUTBOX_BEAT_MS = 5000;
const OUTBOX_STALE_MS = 20000;

function readJSON(key) {
  try {
    return JSON.parse(get(key) || 'null');
  } catch {
    return null;
  }
}

// UserPrefs are one user's: the open conversation, drafts, and the
// outbox of unsent messages. (Direct conversations
// and how far each conversation has been read come from the server, so
// every device agrees.)
export class UserPrefs {
  constructor(userId) {
    this.prefix = `parley.u.${userId}.`;
    // What earlier versions kept here: the list of direct conversations,
    // and read markers of rooms.
    set(this.prefix + 'dms', null);
    set(this.prefix + 'read', null);
  }

  get current() {
    return get(this.prefix + 'current');
  }

  set current(key) {
    set(this.prefix + 'current', key);
  }

  // drafts: conversation key -> unsent text of the composer.
  get drafts() {
    const d = readJSON(this.prefix + 'drafts');
    return d && typeof d === 'object' ? d : {};
  }

  set drafts(obj) {
    set(this.prefix + 'drafts', Object.keys(obj).length ? JSON.stringify(obj) : null);
  }

  // The outbox is per tab (tab id -> { at, items }), so two tabs never
  // send the same message. takeOutbox returns this tab's items after a
  // reload and those of tabs that are gone, which become this tab's.
  takeOutbox(now = Date.now()) {
    const key = this.prefix + 'outbox';
    const all = readJSON(key) || {};
    const me = tabId();
    const items = [];
    for (const [id, entry] of Object.entries(all)) {
      if (id !== me && now - (entry?.at || 0) < OUTBOX_STALE_MS) continue;
      items.push(...(entry?.items || []));
      delete all[id];
    }
    set(key, Object.keys(all).length ? JSON.stringify(all) : null);
    return items;
  }

  // saveOutbox stores this tab's unsent messages (an empty list removes
  // its entry), and keeps the entry fresh while there are any.
  saveOutbox(items) {
    const key = this.prefix + 'outbox';
    const all = readJSON(key) || {};
    const me = tabId();
    if (items.length) all[me] = { at: Date.now(), items };
    else delete all[me];
    set(key, Object.keys(all).length ? JSON.stringify(all) : null);
    clearInterval(this.beat);
    if (items.length) this.beat = setInterval(() => this.saveOutbox(items), OUTBOX_BEAT_MS);
  }

  // forget stops the outbox's heartbeat, when the user signs out.
  forget() {
    clearInterval(this.beat);
  }
}
