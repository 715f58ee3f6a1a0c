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

// UserPrefs are one user's: the open conversation. (Direct conversations
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
}
