// parley's service worker: it makes the page installable and shows Web
// Push notifications. It caches the app shell only, the page's own
// files (index.html and /v/VERSION/…, which never change): never
// messages, files, or anything a server answer holds, so nothing private
// is kept on the device beyond what the page itself is.
//
// It is registered as /sw.js?v=VERSION, so a new build installs a new
// worker, whose cache replaces the old one.

const VERSION = new URL(self.location.href).searchParams.get('v') || 'dev';
const CACHE = `parley-shell-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.add(new Request('/', { cache: 'no-cache' }))).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('parley-shell-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// isShell: the page's own versioned files, cached once fetched.
const isShell = (url) => url.origin === self.location.origin && url.pathname.startsWith('/v/');

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (req.mode === 'navigate' && url.origin === self.location.origin && url.pathname === '/' && !self.navigator.onLine) {
    // Offline: the cached shell, which says it is waiting for the
    // network. Online, the browser loads the page itself (a revalidation
    // of a few hundred bytes).
    event.respondWith(caches.match('/').then((hit) => hit || fetch(req)));
    return;
  }
  if (isShell(url)) {
    event.respondWith(caches.match(req).then((hit) => hit || fetch(req).then((res) => {
      if (res.ok) {
        const copy = res.clone();
        caches.open(CACHE).then((c) => c.put(req, copy));
      }
      return res;
    })));
  }
  // Everything else (the socket, /files, /upload, /hooks) goes to the
  // network untouched.
});

// A push (PROTOCOL.md, "Push notifications"): its JSON says who wrote
// where; a page of this origin that has the focus shows the message
// itself, so no notification.
self.addEventListener('push', (event) => {
  let d = {};
  try {
    d = event.data ? event.data.json() : {};
  } catch {
    d = { title: 'parley', body: event.data ? event.data.text() : '' };
  }
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((wins) => {
    if (wins.some((w) => w.focused && w.visibilityState === 'visible')) return undefined;
    return self.registration.showNotification(d.title || 'parley', {
      body: d.body || 'New message',
      tag: d.tag || 'parley',
      icon: '/icon-192.png',
      data: { roomId: d.roomId || '', withUserId: d.withUserId || '' },
    });
  }));
});

// Clicking a notification opens parley at the conversation.
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const { roomId, withUserId } = event.notification.data || {};
  event.waitUntil(self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((wins) => {
    const win = wins.find((w) => new URL(w.url).origin === self.location.origin);
    if (win) {
      win.postMessage({ type: 'open', roomId, withUserId });
      return win.focus();
    }
    return self.clients.openWindow('/');
  }));
});
