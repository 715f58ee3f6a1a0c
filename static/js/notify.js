// Browser notifications for direct messages and @mentions, opt-in, and
// only when the message is not already in front of the user.

import { notificationsWanted, setNotificationsWanted } from './storage.js';

export const notificationsSupported = () => 'Notification' in window;

export function notificationsEnabled() {
  return notificationsSupported() && Notification.permission === 'granted' && notificationsWanted();
}

// toggleNotifications asks for permission when needed; it resolves to the
// new state and an explanation when it could not turn them on.
export async function toggleNotifications() {
  if (!notificationsSupported()) return { on: false, why: 'This browser does not support notifications.' };
  if (notificationsEnabled()) {
    setNotificationsWanted(false);
    return { on: false };
  }
  let permission = Notification.permission;
  if (permission === 'default') permission = await Notification.requestPermission();
  if (permission !== 'granted') {
    return { on: false, why: 'Notifications are blocked for this site; allow them in your browser settings.' };
  }
  setNotificationsWanted(true);
  return { on: true };
}

// notify shows one notification; tag replaces an older one of the same
// conversation instead of stacking them.
export function notify(title, body, tag, onClick) {
  if (!notificationsEnabled()) return;
  try {
    const n = new Notification(title, { body: body.length > 180 ? body.slice(0, 177) + '…' : body, tag, icon: 'favicon.svg' });
    n.addEventListener('click', () => {
      window.focus();
      onClick();
      n.close();
    });
  } catch {
    // Some platforms only allow notifications from a service worker.
  }
}
