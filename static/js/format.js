// Formatting of times, names and message text. Message text becomes DOM
// nodes (Text, <a>, <span>, <strong>, <em>, <code>, <pre>, <blockquote>),
// never HTML.

import { h } from './dom.js';
import { parse } from './markup.js';

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

// richText turns message content into nodes (markup.js): links for
// http(s) URLs, highlighted @mentions, <strong>, <em>, <code>, <pre> and
// <blockquote> for the formatting people type, Text for everything else.
// Line breaks stay in the Text nodes and are shown by CSS (white-space:
// pre-wrap). Nothing is ever parsed as HTML.
export function richText(content, myName) {
  const frag = document.createDocumentFragment();
  for (const block of parse(content)) {
    if (block.t === 'pre') frag.append(h('pre', { class: 'md-pre' }, h('code', { text: block.v })));
    else if (block.t === 'quote') frag.append(h('blockquote', { class: 'md-quote' }, inlineNodes(block.c, myName)));
    else frag.append(inlineNodes(block.c, myName));
  }
  return frag;
}

function inlineNodes(nodes, myName) {
  const frag = document.createDocumentFragment();
  for (const n of nodes) {
    switch (n.t) {
      case 'text': frag.append(n.v); break;
      case 'b': frag.append(h('strong', {}, inlineNodes(n.c, myName))); break;
      case 'i': frag.append(h('em', {}, inlineNodes(n.c, myName))); break;
      case 'code': frag.append(h('code', { class: 'md-code', text: n.v })); break;
      case 'link': frag.append(h('a', { href: n.href, target: '_blank', rel: 'noopener noreferrer', text: n.v })); break;
      case 'mention': {
        const me = myName && n.v.toLowerCase() === myName.toLowerCase();
        frag.append(h('span', { class: me ? 'mention mention-me' : 'mention', text: '@' + n.v }));
        break;
      }
    }
  }
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
