// Formatting of times, names and message text. Message text becomes DOM
// nodes (Text, <a>, <span>), never HTML.

import { h } from './dom.js';

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
const yearFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'long', day: 'numeric' });

export const formatTime = (d) => timeFmt.format(d);
export const formatFull = (d) => fullFmt.format(d);

// dayKey identifies a local calendar day, for grouping messages.
export function dayKey(d) {
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

export function formatDay(d, now = new Date()) {
  const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
  const day = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  const diff = Math.round((today - day) / 86400000);
  if (diff === 0) return 'Today';
  if (diff === 1) return 'Yesterday';
  if (d.getFullYear() === now.getFullYear()) return weekdayFmt.format(d);
  return yearFmt.format(d);
}

// Avatar colours come from a fixed palette of CSS classes (the page's CSP
// forbids inline styles), chosen by a stable hash of the name.
const AVATAR_COLOURS = 10;

// avatarClass hashes with FNV-1a, which spreads short, similar names
// over the palette better than a plain multiplicative hash.
export function avatarClass(name) {
  let hash = 0x811c9dc5;
  for (const ch of name.toLowerCase()) {
    hash ^= ch.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `avatar-c${hash % AVATAR_COLOURS}`;
}

export function initials(name) {
  const parts = name.split(/[._-]+/).filter(Boolean);
  if (parts.length >= 2) return (parts[0][0] + parts[1][0]).toUpperCase();
  return (name[0] || '?').toUpperCase();
}

export function avatar(name, extraClass = '') {
  return h('span', { class: `avatar ${avatarClass(name)} ${extraClass}`.trim(), 'aria-hidden': 'true', text: initials(name) });
}

export function typingText(names) {
  switch (names.length) {
    case 0: return '';
    case 1: return `${names[0]} is typing…`;
    case 2: return `${names[0]} and ${names[1]} are typing…`;
    case 3: return `${names[0]}, ${names[1]} and ${names[2]} are typing…`;
    default: return 'Several people are typing…';
  }
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

const mentionRes = new Map(); // name -> RegExp, built once per name

// mentions reports whether text @-mentions name (names are unique
// ignoring case).
export function mentions(text, name) {
  if (!name) return false;
  let re = mentionRes.get(name);
  if (!re) {
    re = new RegExp(`(^|[^A-Za-z0-9_.-])@${escapeRegExp(name)}(?![A-Za-z0-9_-])`, 'i');
    mentionRes.set(name, re);
  }
  return re.test(text);
}

// A URL runs to the next blank or angle bracket or quote; punctuation at
// its end is usually the sentence's, not the link's.
const TOKEN = /(https?:\/\/[^\s<>"'`]+)|(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{1,32})/gi;

function trimURL(raw) {
  let url = raw;
  for (;;) {
    const last = url.at(-1);
    if ('.,;:!?\'"*'.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && count(url, '(') < count(url, ')')) url = url.slice(0, -1);
    else if (last === ']' && count(url, '[') < count(url, ']')) url = url.slice(0, -1);
    else return url;
  }
}

const count = (s, ch) => s.split(ch).length - 1;

// safeHref returns the normalised URL when it is http(s), else null.
export function safeHref(text) {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

// richText turns message content into nodes: links for http(s) URLs,
// highlighted @mentions, plain Text for everything else. Line breaks stay
// in the Text nodes and are shown by CSS (white-space: pre-wrap).
export function richText(content, myName) {
  const frag = document.createDocumentFragment();
  let pos = 0;
  TOKEN.lastIndex = 0;
  for (let m; (m = TOKEN.exec(content)); ) {
    if (m[1]) {
      const text = trimURL(m[1]);
      const href = safeHref(text);
      if (!href) continue;
      frag.append(content.slice(pos, m.index));
      frag.append(h('a', { href, target: '_blank', rel: 'noopener noreferrer', text }));
      pos = m.index + text.length;
      TOKEN.lastIndex = pos;
    } else {
      const name = m[3].replace(/\.+$/, '');
      const start = m.index + m[2].length;
      frag.append(content.slice(pos, start));
      const me = myName && name.toLowerCase() === myName.toLowerCase();
      frag.append(h('span', { class: me ? 'mention mention-me' : 'mention', text: '@' + name }));
      pos = start + 1 + name.length;
      TOKEN.lastIndex = pos;
    }
  }
  frag.append(content.slice(pos));
  return frag;
}

export function plural(n, one, many = one + 's') {
  return `${n} ${n === 1 ? one : many}`;
}

// retryText is a rate_limited error for people: the server's message
// (which ends "try again later") and how long that is, from retryAfter
// (seconds).
export function retryText(message, retryAfter) {
  const s = Math.max(1, Math.ceil(retryAfter || 1));
  const wait = s < 90 ? plural(s, 'second') : plural(Math.ceil(s / 60), 'minute');
  return `${message} (in ${wait}).`;
}

// formatSize is a file size for people: 820 bytes, 12 KB, 3.4 MB.
export function formatSize(n) {
  if (n < 1000) return plural(n, 'byte');
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)} ${units[i]}`;
}

// listNames joins names for a sentence: "alice", "alice and bob",
// "alice, bob and 3 others".
export function listNames(names, max = 3) {
  if (names.length <= 1) return names.join('');
  if (names.length <= max) return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
  const rest = names.length - (max - 1);
  return `${names.slice(0, max - 1).join(', ')} and ${plural(rest, 'other')}`;
}

// snippet cuts text to about max characters, on a word where it can.
export function snippet(text, max = 120) {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return (space > max * 0.6 ? cut.slice(0, space) : cut) + '…';
}
