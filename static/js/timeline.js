// Timeline renders one conversation's messages: grouped by day and by
// sender, system lines (kicks, topic changes…) in their place, own
// messages pending or failed, and keeps the reader's place.
//
// Only a window of the conversation is in the DOM (at most WINDOW_MAX
// messages, however many are loaded): scrolling near an edge of the
// window renders the next CHUNK messages there and drops as many from
// the far edge, and at the top of what is loaded it asks for an older
// page. The first message in view stays exactly where it is across
// every change above it (the scroller's own scroll anchoring is off, so
// nothing moves it twice). Changes are rendered at most once per frame;
// flush() renders at once, for code that needs the rows now. Rows are
// reconciled by key: an update adds only new rows, and a row that
// changed is rebuilt with the focus where it was.

import { h } from './dom.js';
import { dayKey, formatDay, formatFull, formatTime } from './format.js';
import { MessageTools, moveBetweenRows } from './message-tools.js';
import { messageRow, messageSig } from './message-view.js';

// Consecutive messages of one sender within GROUP_MS share one header.
const GROUP_MS = 5 * 60 * 1000;
// The reader counts as "at the bottom" within PIN_PX of it.
const PIN_PX = 48;
// Within EDGE_SCREENS screen heights of an edge of the window, the next
// messages beyond it are rendered (or fetched).
const EDGE_SCREENS = 1.5;
// The window: at most WINDOW_MAX messages in the DOM; a conversation
// opens with its newest WINDOW_START; the window moves CHUNK at a time.
const WINDOW_MAX = 150;
const WINDOW_START = 60;
const CHUNK = 50;
// The live region keeps the last ANNOUNCED messages it read out.
const ANNOUNCED = 10;
// A message the reader jumps to is highlighted for FLASH_MS.
const FLASH_MS = 2200;

// indexOfId: the index of the first message whose id is >= id (ids are
// fixed-width, so they compare as strings).
function indexOfId(messages, id) {
  let lo = 0;
  let hi = messages.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (messages[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Timeline {
  constructor(els, callbacks) {
    this.els = els; // scroller, list, loadOlder, start, startTitle, startText, startIcon, pill, jump, announcer
    // onLoadOlder(), onReachBottom(), onJumpLatest(), onEscape(),
    // context(conv) (message-view.js ctx), actions(id) (message-tools.js)
    this.cb = callbacks;
    this.conv = null;
    this.me = null;
    this.lastKey = '';
    this.stick = true; // the reader was at the bottom at the last look
    this.lastTop = 0; // scrollTop at the last scroll event
    // The window, by message id: from loId, up to the newest loaded
    // (atEnd) or to hiId. gen is the conversation's reset count it
    // belongs to.
    this.loId = '';
    this.hiId = '';
    this.atEnd = true;
    this.gen = -1;
    this.dirty = null; // { ownSend } while a render is scheduled
    this.frame = 0;
    this.fallback = 0;
    this.tools = new MessageTools(els.list, (id) => this.cb.actions(id));
    els.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    els.pill.addEventListener('click', () => {
      this.toEnd();
      els.scroller.focus({ preventScroll: true });
    });
    els.jump.addEventListener('click', () => this.cb.onJumpLatest());
    els.loadOlder.addEventListener('click', () => this.older());
    // Images change the height of their row when they load.
    els.list.addEventListener('load', () => {
      if (this.stick && this.atEnd) this.scrollToBottom();
    }, true);
    els.scroller.addEventListener('keydown', (e) => this.onKey(e));
    // The composer grows (a reply, attachments, a notice, more lines) and
    // the timeline shrinks: a reader at the bottom stays there.
    new ResizeObserver(() => {
      if (this.conv && this.stick && this.atEnd && !this.conv.hasNewer) this.scrollToBottom();
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
    this.windowAtEnd();
    this.cancelFrame();
    this.render();
    this.scrollToBottom();
  }

  // announce reads a new message out: it goes into the live region
  // (#announcer), which keeps the last ANNOUNCED; removing the older ones
  // is not announced.
  announce(text) {
    const log = this.els.announcer;
    log.append(h('p', { text }));
    while (log.childElementCount > ANNOUNCED) log.firstElementChild.remove();
  }

  clear() {
    this.conv = null;
    this.cancelFrame();
    this.tools.detach();
    this.els.list.replaceChildren();
    this.els.pill.hidden = true;
    this.els.jump.hidden = true;
  }

  // update re-renders the conversation after a change (in the next
  // frame), keeping the reader at the bottom if they were there, and
  // otherwise where they were. ownSend forces the bottom: you want to see
  // what you just sent.
  update({ ownSend = false } = {}) {
    if (!this.conv) return;
    this.dirty = { ownSend: ownSend || !!this.dirty?.ownSend };
    if (this.frame) return;
    const run = () => this.flush();
    this.frame = requestAnimationFrame(run);
    // A hidden page gets no animation frames; its rows still follow.
    this.fallback = setTimeout(run, 250);
  }

  cancelFrame() {
    cancelAnimationFrame(this.frame);
    clearTimeout(this.fallback);
    this.frame = 0;
    this.dirty = null;
  }

  // flush renders a scheduled update now.
  flush() {
    const dirty = this.dirty;
    this.cancelFrame();
    if (!dirty || !this.conv) return;
    const conv = this.conv;
    const pinned = (this.stick || this.isPinned()) && this.atEnd;
    const follow = (pinned || dirty.ownSend) && !conv.hasNewer;
    if (dirty.ownSend && !this.atEnd) this.windowAtEnd();
    const before = this.lastKey;
    this.keepPlace(() => {
      if (follow && this.atEnd) this.trimTop();
      this.render();
    }, !follow);
    if (follow) {
      this.scrollToBottom();
    } else {
      const last = conv.messages.at(-1);
      const grew = this.lastKey !== before || (!this.atEnd && last && last.id > this.hiId);
      if (grew && last && last.senderId !== this.me.userId && !conv.hasNewer) this.els.pill.hidden = false;
    }
    this.checkEdges();
  }

  // row returns the rendered row of message id, rendering pending changes
  // first; null when it is not in the window.
  row(id) {
    this.flush();
    return this.els.list.querySelector(`.msg[data-id="${CSS.escape(id)}"]`);
  }

  // --- the window ---

  syncGen() {
    if (this.gen === this.conv.gen) return;
    this.gen = this.conv.gen;
    this.windowAtEnd();
  }

  windowAtEnd() {
    const msgs = this.conv.messages;
    this.gen = this.conv.gen;
    this.loId = msgs[Math.max(0, msgs.length - WINDOW_START)]?.id || '';
    this.hiId = '';
    this.atEnd = true;
  }

  // bounds returns the window as indices [lo, hi) into conv.messages.
  bounds() {
    this.syncGen();
    const msgs = this.conv.messages;
    const lo = this.loId ? indexOfId(msgs, this.loId) : 0;
    let hi = msgs.length;
    if (!this.atEnd) {
      hi = indexOfId(msgs, this.hiId);
      if (msgs[hi]?.id === this.hiId) hi++;
    }
    return [Math.min(lo, hi), hi];
  }

  setBounds(lo, hi) {
    const msgs = this.conv.messages;
    this.loId = msgs[lo]?.id || '';
    this.atEnd = hi >= msgs.length;
    this.hiId = this.atEnd ? '' : msgs[hi - 1]?.id || '';
  }

  // trimTop drops the oldest rendered messages beyond WINDOW_MAX, for a
  // reader following the newest ones.
  trimTop() {
    const [lo, hi] = this.bounds();
    if (hi - lo > WINDOW_MAX) this.setBounds(hi - WINDOW_MAX, hi);
  }

  // extendUp renders CHUNK older loaded messages, dropping as many of
  // the newest; false when every loaded older message is shown.
  extendUp() {
    const [lo, hi] = this.bounds();
    if (lo === 0) return false;
    const nlo = Math.max(0, lo - CHUNK);
    this.keepPlace(() => {
      this.setBounds(nlo, Math.min(hi, nlo + WINDOW_MAX));
      this.render();
    });
    return true;
  }

  extendDown() {
    const [lo, hi] = this.bounds();
    const n = this.conv.messages.length;
    if (hi >= n) return false;
    const nhi = Math.min(n, hi + CHUNK);
    this.keepPlace(() => {
      this.setBounds(Math.max(lo, nhi - WINDOW_MAX), nhi);
      this.render();
    });
    return true;
  }

  // windowAround centres the window on message id.
  windowAround(id) {
    const msgs = this.conv.messages;
    const i = indexOfId(msgs, id);
    const lo = Math.max(0, i - WINDOW_START / 2);
    this.setBounds(lo, Math.min(msgs.length, lo + WINDOW_START));
    this.render();
  }

  // toEnd shows the newest messages, as the "New messages" pill does.
  toEnd() {
    if (!this.conv) return;
    if (!this.atEnd) {
      this.windowAtEnd();
      this.render();
    }
    this.scrollToBottom(true);
  }

  // older shows older messages: loaded ones first, then from the server.
  older() {
    if (!this.conv || this.extendUp()) return;
    if (this.conv.hasMore && !this.conv.loadingOlder) this.cb.onLoadOlder();
  }

  // checkEdges fills the window towards an edge the reader is near.
  checkEdges() {
    if (!this.conv) return;
    const s = this.els.scroller;
    const edge = Math.max(400, s.clientHeight * EDGE_SCREENS);
    if (s.scrollTop < edge) this.older();
    else if (!this.atEnd && s.scrollHeight - s.scrollTop - s.clientHeight < edge) this.extendDown();
  }

  // keepPlace runs change (which changes rows) and puts the first row
  // in view back where it was. keep false: only run it.
  keepPlace(change, keep = true) {
    const anchor = keep && !this.isPinnedAtEnd() ? this.anchor() : null;
    change();
    if (anchor) this.restore(anchor);
  }

  isPinnedAtEnd() {
    return this.atEnd && this.isPinned();
  }

  // --- scrolling and keys ---

  isPinned() {
    const s = this.els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= PIN_PX;
  }

  // atNewest: the newest message is loaded and in view.
  atNewest() {
    return !!this.conv && !this.conv.hasNewer && this.atEnd && this.isPinned();
  }

  scrollToBottom(smooth = false) {
    const s = this.els.scroller;
    s.scrollTo({ top: s.scrollHeight, behavior: smooth ? 'smooth' : 'instant' });
    this.els.pill.hidden = true;
    this.stick = true;
  }

  // onScroll follows the reader. Only scrolling up lets go of the bottom:
  // the view shrinking (the composer grows) also fires scroll events,
  // and a reader who was at the bottom stays there.
  onScroll() {
    if (!this.conv) return;
    const top = this.els.scroller.scrollTop;
    const up = top < this.lastTop - 1;
    this.lastTop = top;
    if (this.isPinned() && this.atEnd) this.stick = true;
    else if (up || !this.atEnd) this.stick = false;
    if (this.stick) {
      this.els.pill.hidden = true;
      this.cb.onReachBottom();
    }
    this.checkEdges();
  }

  // onKey: the arrow keys move between messages (and the window moves
  // with them); Escape anywhere in the messages goes back to the composer.
  onKey(e) {
    const first = this.els.list.querySelector('.msg[data-id]');
    if (e.key === 'ArrowUp' && e.target === first && !e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) this.extendUp();
    const rows = this.els.list.querySelectorAll('.msg[data-id]');
    if (e.key === 'ArrowDown' && e.target === rows[rows.length - 1] && !e.altKey && !e.ctrlKey && !e.metaKey && !e.shiftKey) this.extendDown();
    if (moveBetweenRows(e, this.els.scroller, this.els.list)) return;
    if (e.key === 'Escape' && !e.defaultPrevented) {
      e.preventDefault();
      this.cb.onEscape();
    }
  }

  // reveal scrolls to a message, highlights it and gives it the focus;
  // false when it is not loaded.
  reveal(id) {
    let li = this.row(id);
    if (!li && this.conv?.byId.has(id)) {
      this.windowAround(id);
      li = this.row(id);
    }
    if (!li) return false;
    li.scrollIntoView({ block: 'center' });
    this.stick = this.isPinned() && this.atEnd;
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
      if (r.bottom > top) return { el, offset: r.top - top };
    }
    return null;
  }

  restore({ el, offset }) {
    if (!el.isConnected) return;
    const top = this.els.scroller.getBoundingClientRect().top;
    const delta = el.getBoundingClientRect().top - top - offset;
    if (delta) this.els.scroller.scrollTop += delta;
  }

  // --- rendering ---

  render() {
    const conv = this.conv;
    const [lo, hi] = this.bounds();
    const items = this.items(conv, lo, hi);
    const list = this.els.list;
    // Drop rows that went away or changed first, so the rows that stay are
    // never moved (a moved row loses focus). A rebuilt row gets the focus
    // back on the same control.
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
    const moreAbove = lo > 0 || conv.hasMore;
    loadOlder.hidden = !moreAbove;
    loadOlder.disabled = conv.loadingOlder;
    const label = conv.loadingOlder ? 'Loading…' : 'Load older messages';
    if (loadOlder.textContent !== label) loadOlder.textContent = label;
    start.hidden = moreAbove || !conv.loaded;
    jump.hidden = !conv.hasNewer;
    if (conv.hasNewer) this.els.pill.hidden = true;
    start.classList.toggle('is-trimmed', conv.trimmed);
    let icon;
    let title;
    let text;
    if (conv.trimmed) {
      icon = '…';
      title = 'Older messages are not kept on this server';
      text = `It keeps only the most recent messages of each ${conv.isRoom ? 'room' : 'conversation'}; this is the oldest one it still has.`;
    } else if (conv.isRoom) {
      icon = '#';
      title = `This is the very beginning of ${conv.title}`;
      text = conv.topic || 'Say hello! Everyone in the room sees what you write here.';
    } else {
      icon = '@';
      title = `This is your conversation with ${conv.name}`;
      text = 'Only the two of you can see these messages.';
    }
    // Set only on change: a text node rewritten is a change to the page.
    if (startIcon.textContent !== icon) startIcon.textContent = icon;
    if (startTitle.textContent !== title) startTitle.textContent = title;
    if (startText.textContent !== text) startText.textContent = text;
  }

  // items lists the rows of messages [lo, hi): day dividers, the "new"
  // line, system lines, messages, and at the end of the conversation the
  // user's own messages not yet acknowledged.
  items(conv, lo, hi) {
    const out = [];
    const now = new Date();
    const myId = this.me.userId;
    const ctx = this.cb.context(conv);
    const msgs = conv.messages;
    const before = msgs[lo - 1];
    // The row before the window decides the first one's day and group,
    // so a row looks the same whichever window shows it.
    let prev = before ? { senderId: before.senderId, date: new Date(before.timestamp), failed: false } : null;
    let prevDay = before ? dayKey(new Date(before.timestamp)) : '';
    let newLine = conv.unreadMarker != null &&
      !msgs.slice(0, lo).some((m) => m.id > conv.unreadMarker && m.senderId !== myId);
    const events = conv.events;
    // Events after the message before the window, up to the window's end.
    const fromId = before ? before.id : '';
    const toId = hi < msgs.length ? msgs[hi].id : null;
    let e = 0;
    while (e < events.length && before && events[e].afterId < fromId) e++;
    const flushEvents = (beforeId) => {
      for (; e < events.length && (beforeId == null || events[e].afterId < beforeId); e++) {
        const ev = events[e];
        if (toId != null && ev.afterId >= toId) return;
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
    for (let i = lo; i < hi; i++) {
      flushEvents(msgs[i].id);
      push(msgs[i], false);
    }
    if (hi >= msgs.length) {
      flushEvents(null);
      if (!conv.hasNewer) {
        for (const p of conv.pending) push({ ...p, senderId: myId, senderName: this.me.username }, true);
      }
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
