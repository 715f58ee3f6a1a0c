// The installable page and Web Push: the service worker (sw.js, which
// caches the app shell only) and this device's push subscription.

// version is the build the page was loaded as (/v/VERSION/js/pwa.js).
function version() {
  const parts = new URL(import.meta.url).pathname.split('/');
  return parts[1] === 'v' ? parts[2] : 'dev';
}

export const pushSupported = () => 'serviceWorker' in navigator && 'PushManager' in window;

// registerServiceWorker installs sw.js for the whole site; onMessage gets
// what it posts (a notification clicked: { type: 'open', roomId, withUserId }).
export function registerServiceWorker(onMessage) {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register(`/sw.js?v=${encodeURIComponent(version())}`, { scope: '/' }).catch(() => {
    // An insecure origin (plain http, not localhost) has no service worker.
  });
  navigator.serviceWorker.addEventListener('message', (e) => onMessage(e.data || {}));
}

function keyBytes(base64url) {
  const s = atob(base64url.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

// subscribePush subscribes this device (or finds its subscription) for
// the server's VAPID key; it resolves to what pushSubscribe sends.
export async function subscribePush(vapidKey) {
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(vapidKey) });
  const json = sub.toJSON();
  return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
}

// unsubscribePush ends this device's subscription; it resolves to its
// endpoint, or '' when there was none.
export async function unsubscribePush() {
  const reg = await navigator.serviceWorker.getRegistration();
  const sub = reg && await reg.pushManager.getSubscription();
  if (!sub) return '';
  const { endpoint } = sub;
  await sub.unsubscribe();
  return endpoint;
}
