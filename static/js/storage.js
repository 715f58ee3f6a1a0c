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

function getJSON(key, fallback) {
  try {
    const v = JSON.parse(get(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

export const TOKEN_KEY = TOKEN;
export const loadToken = () => get(TOKEN);
export const saveToken = (token) => set(TOKEN, token);
export const notificationsWanted = () => get(NOTIFY) === '1';
export const setNotificationsWanted = (on) => set(NOTIFY, on ? '1' : null);

// UserPrefs are one user's: the open conversation and how far each room
// has been read. (Direct conversations come from the server, in
// authenticated.directs, so every device lists the same ones.)
export class UserPrefs {
  constructor(userId) {
    this.prefix = `parley.u.${userId}.`;
    this.read = getJSON(this.prefix + 'read', {});
    set(this.prefix + 'dms', null); // the list earlier versions kept
  }

  get current() {
    return get(this.prefix + 'current');
  }

  set current(key) {
    set(this.prefix + 'current', key);
  }

  lastRead(roomId) {
    return this.read[roomId];
  }

  setLastRead(roomId, id) {
    if (this.read[roomId] && this.read[roomId] >= id) return;
    this.read[roomId] = id;
    set(this.prefix + 'read', JSON.stringify(this.read));
  }

  forgetRoom(roomId) {
    delete this.read[roomId];
    set(this.prefix + 'read', JSON.stringify(this.read));
  }
}
