// Search results: grouped by conversation, newest first, with the words
// searched for marked. Marks are <mark> elements around Text nodes; the
// text itself never becomes markup.

import { h } from './dom.js';
import { formatDay, formatFull, formatTime, plural } from './format.js';

// SNIPPET_CHARS is about how much of a long message a result shows,
// around the first match.
const SNIPPET_CHARS = 280;

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');

// highlight returns text as nodes, with each case-insensitive
// occurrence of query in a <mark>.
export function highlight(text, query) {
  const frag = document.createDocumentFragment();
  const q = query.trim();
  if (!q) {
    frag.append(text);
    return frag;
  }
  const re = new RegExp(escapeRegExp(q), 'giu');
  let pos = 0;
  for (const m of text.matchAll(re)) {
    frag.append(text.slice(pos, m.index), h('mark', { text: m[0] }));
    pos = m.index + m[0].length;
  }
  frag.append(text.slice(pos));
  return frag;
}

// excerpt cuts a long text around the first match of query.
export function excerpt(text, query) {
  if (text.length <= SNIPPET_CHARS) return text;
  const at = text.toLowerCase().indexOf(query.trim().toLowerCase());
  const start = Math.max(0, Math.min(at - 60, text.length - SNIPPET_CHARS));
  const end = Math.min(text.length, start + SNIPPET_CHARS);
  return (start > 0 ? '…' : '') + text.slice(start, end).trim() + (end < text.length ? '…' : '');
}

// renderResults fills container with results. place(m) tells where a
// result is: { key, label }; open(key, m) opens it.
export function renderResults(container, summary, d, place, open) {
  const results = d.results || [];
  const groups = new Map();
  for (const m of results) {
    const where = place(m);
    if (!where) continue;
    if (!groups.has(where.key)) groups.set(where.key, { ...where, items: [] });
    groups.get(where.key).items.push(m);
  }
  summary.textContent = results.length
    ? `${plural(results.length, 'result')} for “${d.query}”${d.truncated ? ' (the search stopped early; be more specific)' : ''}`
    : `Nothing found for “${d.query}”`;
  const now = new Date();
  container.replaceChildren(...[...groups.values()].map((g) => h('section', { class: 'search-group', 'aria-label': g.label },
    h('h3', { class: 'search-group-title', text: g.label }),
    h('ul', {}, ...g.items.map((m) => {
      const date = new Date(m.timestamp);
      return h('li', {}, h('button', {
        type: 'button', class: 'search-result', dataset: { result: m.id, conv: g.key }, onclick: () => open(g.key, m),
      },
      h('span', { class: 'search-result-meta' },
        h('strong', { text: m.senderName }),
        h('time', { datetime: m.timestamp, title: formatFull(date), text: `${formatDay(date, now)}, ${formatTime(date)}` })),
      h('span', { class: 'search-result-text' }, highlight(excerpt(m.content, d.query), d.query))));
    })))));
  if (!results.length) {
    container.append(h('p', { class: 'search-empty', text: 'Try other words. Search looks at the messages the server keeps, in your rooms and direct conversations.' }));
  }
}
