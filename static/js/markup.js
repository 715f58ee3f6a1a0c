// The small formatting people expect in a chat, parsed from a message's
// raw text (which is what the server stores and searches): *bold* (or
// **bold**), _italic_, `code`, ``` fenced code blocks ```, "> " quotes,
// http(s) links and @mentions. parse returns a tree of plain objects;
// format.js turns it into DOM nodes, never into HTML. This module touches
// no DOM, so node --test checks it.
//
// Blocks: { t: 'p', c: inline[] }, { t: 'quote', c: inline[] },
// { t: 'pre', v: text }. Inline: { t: 'text', v }, { t: 'b', c },
// { t: 'i', c }, { t: 'code', v }, { t: 'link', href, v },
// { t: 'mention', v: name }.

// FENCE opens and closes a code block on a line of its own (a language
// name may follow the opening one; it is dropped).
const FENCE = /^\s*```[\w+.-]*\s*$/;
const QUOTE = /^>\s?/;

// parse splits text into blocks, and each block's text into inline parts.
export function parse(text) {
  const blocks = [];
  const lines = text.split('\n');
  let para = [];
  let quote = [];
  const flush = () => {
    if (para.length) blocks.push({ t: 'p', c: inline(para.join('\n')) });
    if (quote.length) blocks.push({ t: 'quote', c: inline(quote.join('\n')) });
    para = [];
    quote = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const end = lines.findIndex((l, j) => j > i && FENCE.test(l));
      if (end > i) {
        flush();
        blocks.push({ t: 'pre', v: lines.slice(i + 1, end).join('\n') });
        i = end;
        continue;
      }
    }
    if (QUOTE.test(line)) {
      if (para.length) flush();
      quote.push(line.replace(QUOTE, ''));
    } else {
      if (quote.length) flush();
      para.push(line);
    }
  }
  flush();
  return blocks;
}

// A URL runs to the next blank or angle bracket or quote; punctuation at
// its end is usually the sentence's, not the link's.
const URL_RE = /https?:\/\/[^\s<>"'`]+/y;
const MENTION_RE = /@([A-Za-z0-9_.-]{1,32})/y;
const WORD = /[A-Za-z0-9]/;

// inline parses one block's text.
export function inline(text) {
  const out = [];
  let plain = '';
  const push = (node) => {
    if (plain) out.push({ t: 'text', v: plain });
    plain = '';
    out.push(node);
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const prev = i > 0 ? text[i - 1] : '';
    if (ch === '`') {
      const end = text.indexOf('`', i + 1);
      if (end > i + 1 && !text.slice(i + 1, end).includes('\n')) {
        push({ t: 'code', v: text.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    } else if ((ch === 'h' || ch === 'H') && !WORD.test(prev)) {
      URL_RE.lastIndex = i;
      const m = URL_RE.exec(text);
      if (m) {
        const v = trimURL(m[0]);
        const href = safeHref(v);
        if (href) {
          push({ t: 'link', href, v });
          i += v.length;
          continue;
        }
      }
    } else if (ch === '@' && !/[A-Za-z0-9_.@-]/.test(prev)) {
      MENTION_RE.lastIndex = i;
      const m = MENTION_RE.exec(text);
      if (m) {
        const name = m[1].replace(/\.+$/, '');
        push({ t: 'mention', v: name });
        i += 1 + name.length;
        continue;
      }
    } else if ((ch === '*' || ch === '_') && !WORD.test(prev) && prev !== ch) {
      const span = emphasis(text, i);
      if (span) {
        push({ t: ch === '*' ? 'b' : 'i', c: inline(span.inner) });
        i = span.end;
        continue;
      }
    }
    plain += ch;
    i++;
  }
  if (plain) out.push({ t: 'text', v: plain });
  return out;
}

// emphasis finds *text*, **text** or _text_ starting at i: the text
// starts and ends with a non-blank, stays on one line, and the closing
// mark is not inside a word. It returns { inner, end } or null.
function emphasis(text, i) {
  const ch = text[i];
  const mark = ch === '*' && text[i + 1] === '*' ? '**' : ch;
  if (ch === '_' && text[i + 1] === '_') return null; // __init__, not emphasis
  const from = i + mark.length;
  if (from >= text.length || /\s/.test(text[from]) || text[from] === ch) return null;
  for (let j = text.indexOf(mark, from + 1); j > 0; j = text.indexOf(mark, j + 1)) {
    const inner = text.slice(from, j);
    if (inner.includes('\n')) return null;
    const after = text[j + mark.length] || '';
    if (/\s/.test(text[j - 1]) || WORD.test(after) || after === ch) continue;
    return { inner, end: j + mark.length };
  }
  return null;
}

function trimURL(raw) {
  let url = raw;
  for (;;) {
    const last = url.at(-1);
    if ('.,;:!?\'"*_'.includes(last)) url = url.slice(0, -1);
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

// plainText is what a message says without its marks, for previews.
export function plainText(blocks) {
  const flat = (nodes) => nodes.map((n) => (n.c ? flat(n.c) : n.t === 'mention' ? `@${n.v}` : n.v)).join('');
  return blocks.map((b) => (b.t === 'pre' ? b.v : flat(b.c))).join('\n');
}
