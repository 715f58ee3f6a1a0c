// Timeline renders one conversation's messages: grouped by day and by
// sender, own messages pending or failed, and keeps the reader's place.
// It reconciles by key instead of rebuilding, so an update adds only the
// new rows (screen readers announce additions of the role="log").

import { h } from './dom.js';
import { avatar, dayKey, formatDay, formatFull, formatTime, mentions, richText } from './format.js';

// Consecutive messages of one sender within GROUP_MS share one header.
const GROUP_MS = 5 * 60 * 1000;
// The reader counts as "at the bottom" within PIN_PX of it.
const PIN_PX = 48;
// Older history is fetched when the reader scrolls within LOAD_PX of the top.
const LOAD_PX = 120;

export class Timeline {
  constructor(els, callbacks) {
    this.els = els; // scroller, list, loadOlder, start, startTitle, startText, startIcon, pill
    this.cb = callbacks; // onLoadOlder(), onRetry(clientMsgId), onDiscard(clientMsgId), onReachBottom()
    this.conv = null;
    this.me = null;
    this.lastKey = '';
    els.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    els.pill.addEventListener('click', () => {
      this.scrollToBottom(true);
      els.scroller.focus({ preventScroll: true });
    });
    els.loadOlder.addEventListener('click', () => this.cb.onLoadOlder());
  }

  // show switches to conv and scrolls to its newest message.
  show(conv, me) {
    this.conv = conv;
    this.me = me;
    this.els.list.replaceChildren();
    this.lastKey = '';
    this.els.pill.hidden = true;
    this.render();
    this.scrollToBottom();
  }

  clear() {
    this.conv = null;
    this.els.list.replaceChildren();
    this.els.pill.hidden = true;
  }

  // update re-renders the conversation after a change, keeping the reader
  // at the bottom if they were there, and otherwise where they were.
  // ownSend forces the bottom: you want to see what you just sent.
  update({ ownSend = false } = {}) {
    if (!this.conv) return;
    const pinned = this.isPinned();
    const anchor = pinned ? null : this.anchor();
    const before = this.lastKey;
    this.render();
    if (pinned || ownSend) {
      this.scrollToBottom();
    } else {
      if (anchor) this.restore(anchor);
      const last = this.conv.messages.at(-1);
      if (this.lastKey !== before && last && last.senderId !== this.me.userId) this.els.pill.hidden = false;
    }
  }

  isPinned() {
    const s = this.els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= PIN_PX;
  }

  scrollToBottom(smooth = false) {
    const s = this.els.scroller;
    s.scrollTo({ top: s.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    this.els.pill.hidden = true;
  }

  onScroll() {
    if (!this.conv) return;
    if (this.isPinned()) {
      this.els.pill.hidden = true;
      this.cb.onReachBottom();
    }
    if (this.els.scroller.scrollTop < LOAD_PX && this.conv.hasMore && !this.conv.loadingOlder) this.cb.onLoadOlder();
  }

  // anchor remembers the first row in view and where it is.
  anchor() {
    const top = this.els.scroller.getBoundingClientRect().top;
    for (const el of this.els.list.children) {
      const r = el.getBoundingClientRect();
      if (r.bottom > top) return { key: el.dataset.key, offset: r.top - top };
    }
    return null;
  }

  restore({ key, offset }) {
    const el = [...this.els.list.children].find((c) => c.dataset.key === key);
    if (!el) return;
    const top = this.els.scroller.getBoundingClientRect().top;
    this.els.scroller.scrollTop += el.getBoundingClientRect().top - top - offset;
  }

  render() {
    const conv = this.conv;
    const items = this.items(conv);
    const list = this.els.list;
    // Drop rows that went away or changed first, so the rows that stay are
    // never moved (a moved row is announced again and loses focus).
    const want = new Map(items.map((item) => [item.key, item]));
    const existing = new Map();
    for (const el of [...list.children]) {
      if (want.get(el.dataset.key)?.sig === el.dataset.sig) existing.set(el.dataset.key, el);
      else el.remove();
    }
    let cursor = list.firstElementChild;
    for (const item of items) {
      let el = existing.get(item.key);
      if (!el) {
        el = item.build();
        el.dataset.key = item.key;
        el.dataset.sig = item.sig;
      }
      if (el === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(el, cursor);
    }
    this.lastKey = items.at(-1)?.key || '';

    const { loadOlder, start, startTitle, startText, startIcon } = this.els;
    loadOlder.hidden = !conv.hasMore;
    loadOlder.disabled = conv.loadingOlder;
    loadOlder.textContent = conv.loadingOlder ? 'Loading…' : 'Load older messages';
    start.hidden = conv.hasMore || !conv.loaded;
    if (conv.isRoom) {
      startIcon.textContent = '#';
      startTitle.textContent = `This is the very beginning of #${conv.name}`;
      startText.textContent = 'Say hello! Everyone in the room sees what you write here.';
    } else {
      startIcon.textContent = '@';
      startTitle.textContent = `This is your conversation with ${conv.name}`;
      startText.textContent = 'Only the two of you can see these messages.';
    }
  }

  // items lists the rows to show: day dividers, the "new" line, messages.
  items(conv) {
    const out = [];
    const now = new Date();
    const myId = this.me.userId;
    let prev = null;
    let prevDay = '';
    let newLine = conv.unreadMarker != null;
    const push = (m, pending) => {
      const date = new Date(m.timestamp);
      const day = dayKey(date);
      if (day !== prevDay) {
        const label = formatDay(date, now);
        out.push({ key: `day:${day}`, sig: label, build: () => dayDivider(label) });
        prevDay = day;
        prev = null;
      }
      if (newLine && !pending && m.id > conv.unreadMarker && m.senderId !== myId) {
        out.push({ key: 'new', sig: 'new', build: () => h('li', { class: 'new-divider' }, h('span', { text: 'New' })) });
        newLine = false;
        prev = null;
      }
      const continued = !!prev && prev.senderId === m.senderId && !prev.failed &&
        date - prev.date < GROUP_MS;
      const mention = !pending && m.senderId !== myId && mentions(m.content, this.me.username);
      const status = pending ? m.status : '';
      const key = pending ? `p:${m.clientMsgId}` : `m:${m.id}`;
      out.push({
        key,
        sig: `${continued ? 1 : 0}${mention ? 1 : 0}${status}${pending && m.error ? m.error : ''}`,
        build: () => this.messageRow(m, { continued, mention, pending, date }),
      });
      prev = { senderId: m.senderId, date, failed: status === 'failed' };
    };
    for (const m of conv.messages) push(m, false);
    for (const p of conv.pending) push({ ...p, senderId: myId, senderName: this.me.username }, true);
    return out;
  }

  messageRow(m, { continued, mention, pending, date }) {
    const classes = ['msg'];
    if (continued) classes.push('msg-continued');
    if (m.senderId === this.me.userId) classes.push('msg-own');
    if (mention) classes.push('msg-mention');
    if (pending) classes.push(m.status === 'failed' ? 'msg-failed' : 'msg-pending');
    const time = h('time', { class: 'msg-time', datetime: m.timestamp, title: formatFull(date), text: formatTime(date) });
    const gutter = continued
      ? h('div', { class: 'msg-gutter' }, h('time', { class: 'msg-hover-time', datetime: m.timestamp, 'aria-hidden': 'true', text: formatTime(date) }))
      : h('div', { class: 'msg-gutter' }, avatar(m.senderName));
    const meta = h('div', { class: continued ? 'msg-meta visually-hidden' : 'msg-meta' },
      h('span', { class: 'msg-sender', text: m.senderName }), ' ', time);
    const body = h('div', { class: 'msg-main' }, meta, h('div', { class: 'msg-text' }, richText(m.content, this.me.username)));
    if (pending && m.status === 'sending') {
      body.append(h('div', { class: 'msg-state', text: 'Sending…' }));
    } else if (pending) {
      body.append(h('div', { class: 'msg-state msg-error', role: 'alert' },
        h('span', { text: `Not sent: ${m.error || 'no answer from the server'}.` }), ' ',
        h('button', { type: 'button', class: 'link-btn msg-retry', onclick: () => this.cb.onRetry(m.clientMsgId), text: 'Retry' }), ' ',
        h('button', { type: 'button', class: 'link-btn msg-discard', onclick: () => this.cb.onDiscard(m.clientMsgId), text: 'Discard' })));
    }
    const attrs = { class: classes.join(' ') };
    if (!pending) attrs['data-id'] = m.id;
    return h('li', attrs, gutter, body);
  }
}

function dayDivider(label) {
  return h('li', { class: 'day-divider' }, h('span', { class: 'day-label', text: label }));
}
