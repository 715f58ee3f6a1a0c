// Timeline renders one conversation's messages: grouped by day and by
// sender, system lines (kicks, topic changes…) in their place, own
// messages pending or failed, and keeps the reader's place. It reconciles
// by key instead of rebuilding, so an update adds only the new rows
// (screen readers announce additions of the role="log"), and a row that
// changed is rebuilt with the focus where it was.

import { h } from './dom.js';
import { dayKey, formatDay, formatFull, formatTime } from './format.js';
import { MessageTools, moveBetweenRows } from './message-tools.js';
import { messageRow, messageSig } from './message-view.js';

// Consecutive messages of one sender within GROUP_MS share one header.
const GROUP_MS = 5 * 60 * 1000;
// The reader counts as "at the bottom" within PIN_PX of it.
const PIN_PX = 48;
// Older history is fetched when the reader scrolls within LOAD_PX of the top.
const LOAD_PX = 120;
// A message the reader jumps to is highlighted for FLASH_MS.
const FLASH_MS = 2200;

export class Timeline {
  constructor(els, callbacks) {
    this.els = els; // scroller, list, loadOlder, start, startTitle, startText, startIcon, pill, jump
    // onLoadOlder(), onReachBottom(), onJumpLatest(), onEscape(),
    // context(conv) (message-view.js ctx), actions(id) (message-tools.js)
    this.cb = callbacks;
    this.conv = null;
    this.me = null;
    this.lastKey = '';
    this.stick = true; // the reader was at the bottom at the last look
    this.tools = new MessageTools(els.list, (id) => this.cb.actions(id));
    els.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    els.pill.addEventListener('click', () => {
      this.scrollToBottom(true);
      els.scroller.focus({ preventScroll: true });
    });
    els.jump.addEventListener('click', () => this.cb.onJumpLatest());
    els.loadOlder.addEventListener('click', () => this.cb.onLoadOlder());
    // Images change the height of their row when they load.
    els.list.addEventListener('load', () => {
      if (this.stick) this.scrollToBottom();
    }, true);
    els.scroller.addEventListener('keydown', (e) => this.onKey(e));
    // The composer grows (a reply, attachments, a notice) and the timeline
    // shrinks: a reader at the bottom stays there.
    new ResizeObserver(() => {
      if (this.conv && this.stick && !this.conv.hasNewer) this.scrollToBottom();
    }).observe(els.scroller);
  }

  // show switches to conv and scrolls to its newest message.
  show(conv, me) {
    this.conv = conv;
    this.me = me;
    this.tools.detach();
    this.els.list.replaceChildren();
    this.lastKey = '';
    this.els.pill.hidden = true;
    this.render();
    this.scrollToBottom();
  }

  clear() {
    this.conv = null;
    this.tools.detach();
    this.els.list.replaceChildren();
    this.els.pill.hidden = true;
    this.els.jump.hidden = true;
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
    if ((pinned || ownSend) && !this.conv.hasNewer) {
      this.scrollToBottom();
    } else {
      if (anchor) this.restore(anchor);
      const last = this.conv.messages.at(-1);
      if (this.lastKey !== before && last && last.senderId !== this.me.userId && !this.conv.hasNewer) this.els.pill.hidden = false;
    }
  }

  isPinned() {
    const s = this.els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= PIN_PX;
  }

  // atNewest: the newest message is loaded and in view.
  atNewest() {
    return !!this.conv && !this.conv.hasNewer && this.isPinned();
  }

  scrollToBottom(smooth = false) {
    const s = this.els.scroller;
    s.scrollTo({ top: s.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    this.els.pill.hidden = true;
    this.stick = true;
  }

  onScroll() {
    if (!this.conv) return;
    this.stick = this.isPinned();
    if (this.stick) {
      this.els.pill.hidden = true;
      this.cb.onReachBottom();
    }
    if (this.els.scroller.scrollTop < LOAD_PX && this.conv.hasMore && !this.conv.loadingOlder) this.cb.onLoadOlder();
  }

  // onKey: the arrow keys move between messages; Escape goes back to the
  // composer.
  onKey(e) {
    if (moveBetweenRows(e, this.els.scroller, this.els.list)) return;
    if (e.key === 'Escape' && (e.target === this.els.scroller || e.target.matches?.('.msg'))) {
      e.preventDefault();
      this.cb.onEscape();
    }
  }

  // reveal scrolls to a message, highlights it and gives it the focus;
  // false when it is not loaded.
  reveal(id) {
    const li = this.els.list.querySelector(`.msg[data-id="${id}"]`);
    if (!li) return false;
    li.scrollIntoView({ block: 'center' });
    this.stick = this.isPinned();
    li.classList.remove('msg-flash');
    void li.offsetWidth; // restart the animation
    li.classList.add('msg-flash');
    setTimeout(() => li.classList.remove('msg-flash'), FLASH_MS);
    li.focus({ preventScroll: true });
    return true;
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
    // never moved (a moved row is announced again and loses focus). A
    // rebuilt row gets the focus back on the same control.
    const want = new Map(items.map((item) => [item.key, item]));
    const existing = new Map();
    let refocus = null;
    for (const el of [...list.children]) {
      if (want.get(el.dataset.key)?.sig === el.dataset.sig) {
        existing.set(el.dataset.key, el);
        continue;
      }
      if (el.contains(document.activeElement)) {
        refocus = { key: el.dataset.key, fk: document.activeElement.closest('[data-fk]')?.dataset.fk || '' };
      }
      el.remove();
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
    this.tools.refresh();
    if (refocus) {
      const row = [...list.children].find((c) => c.dataset.key === refocus.key);
      const target = (refocus.fk && row?.querySelector(`[data-fk="${CSS.escape(refocus.fk)}"]`)) || (row?.matches('[tabindex]') ? row : null);
      if (target) target.focus({ preventScroll: true });
      else if (row || refocus.fk) this.els.scroller.focus({ preventScroll: true });
    }

    const { loadOlder, start, startTitle, startText, startIcon, jump } = this.els;
    loadOlder.hidden = !conv.hasMore;
    loadOlder.disabled = conv.loadingOlder;
    loadOlder.textContent = conv.loadingOlder ? 'Loading…' : 'Load older messages';
    start.hidden = conv.hasMore || !conv.loaded;
    jump.hidden = !conv.hasNewer;
    if (conv.hasNewer) this.els.pill.hidden = true;
    start.classList.toggle('is-trimmed', conv.trimmed);
    if (conv.trimmed) {
      startIcon.textContent = '…';
      startTitle.textContent = 'Older messages are not kept on this server';
      startText.textContent = `It keeps only the most recent messages of each ${conv.isRoom ? 'room' : 'conversation'}; this is the oldest one it still has.`;
    } else if (conv.isRoom) {
      startIcon.textContent = '#';
      startTitle.textContent = `This is the very beginning of #${conv.name}`;
      startText.textContent = conv.topic || 'Say hello! Everyone in the room sees what you write here.';
    } else {
      startIcon.textContent = '@';
      startTitle.textContent = `This is your conversation with ${conv.name}`;
      startText.textContent = 'Only the two of you can see these messages.';
    }
  }

  // items lists the rows to show: day dividers, the "new" line, system
  // lines, messages.
  items(conv) {
    const out = [];
    const now = new Date();
    const myId = this.me.userId;
    const ctx = this.cb.context(conv);
    let prev = null;
    let prevDay = '';
    let newLine = conv.unreadMarker != null;
    let e = 0;
    const events = conv.events;
    const flushEvents = (beforeId) => {
      for (; e < events.length && (beforeId == null || events[e].afterId < beforeId); e++) {
        const ev = events[e];
        out.push({ key: ev.key, sig: ev.text, build: () => systemLine(ev) });
        prev = null;
      }
    };
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
      const mention = !pending && m.senderId !== myId && ctx.mentionsMe(m);
      const editing = !pending && ctx.editingId === m.id;
      const opts = { continued, mention, pending, date, editing };
      out.push({
        key: pending ? `p:${m.clientMsgId}` : `m:${m.id}`,
        sig: messageSig(m, opts, this.me),
        build: () => messageRow(m, opts, ctx),
      });
      prev = { senderId: m.senderId, date, failed: m.status === 'failed' };
    };
    for (const m of conv.messages) {
      flushEvents(m.id);
      push(m, false);
    }
    flushEvents(null);
    if (!conv.hasNewer) {
      for (const p of conv.pending) push({ ...p, senderId: myId, senderName: this.me.username }, true);
    }
    return out;
  }
}

function dayDivider(label) {
  return h('li', { class: 'day-divider' }, h('span', { class: 'day-label', text: label }));
}

function systemLine(ev) {
  const date = new Date(ev.timestamp);
  return h('li', { class: ev.warn ? 'sys-line sys-warn' : 'sys-line' },
    h('span', { class: 'sys-text', text: ev.text }),
    h('time', { class: 'sys-time', datetime: ev.timestamp, title: formatFull(date), text: formatTime(date) }));
}
