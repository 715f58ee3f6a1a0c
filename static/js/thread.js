// ThreadPanel shows one message and the replies to it (the thread frame,
// kept up to date by the app), with a composer that replies in the thread.

import { h } from './dom.js';
import { formatDay, plural } from './format.js';
import { MessageTools, moveBetweenRows } from './message-tools.js';
import { messageRow, messageSig } from './message-view.js';

export class ThreadPanel {
  // els: panel, list, status, where, scroller. actions(id): as for
  // MessageTools.
  constructor(els, actions) {
    this.els = els;
    this.tools = new MessageTools(els.list, actions);
    els.scroller.addEventListener('keydown', (e) => moveBetweenRows(e, els.scroller, els.list));
  }

  // render shows thread ({ parent, replies, loading, error }) of conv;
  // pending: own replies not yet acknowledged. ctx: message-view.js.
  render(thread, conv, pending, ctx) {
    const { list, status, where, scroller } = this.els;
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
    where.textContent = conv.isRoom ? `in ${conv.title}` : `with ${conv.name}`;
    status.textContent = thread.error || (thread.loading ? 'Loading the thread…' : '');
    const rows = [];
    const add = (m, isPending) => {
      const date = new Date(m.timestamp);
      const opts = { continued: false, mention: !isPending && m.senderId !== ctx.me.userId && ctx.mentionsMe(m), pending: isPending, date,
        editing: !isPending && ctx.editingId === m.id };
      rows.push({ key: isPending ? `p:${m.clientMsgId}` : `m:${m.id}`, sig: messageSig(m, opts, ctx.me), build: () => messageRow(m, opts, ctx) });
    };
    if (thread.parent) {
      add(thread.parent, false);
      const n = thread.replies.length;
      rows.push({ key: 'divider', sig: String(n), build: () => h('li', { class: 'thread-divider', text: n ? plural(n, 'reply', 'replies') : 'No replies yet' }) });
      for (const m of thread.replies) add(m, false);
      for (const p of pending) add({ ...p, senderId: ctx.me.userId, senderName: ctx.me.username }, true);
    }
    // Rebuild only the rows that changed, as the timeline does.
    const want = new Map(rows.map((r) => [r.key, r]));
    const keep = new Map();
    let refocus = null;
    for (const el of [...list.children]) {
      if (want.get(el.dataset.key)?.sig === el.dataset.sig) keep.set(el.dataset.key, el);
      else {
        if (el.contains(document.activeElement)) refocus = { key: el.dataset.key, fk: document.activeElement.closest('[data-fk]')?.dataset.fk || '' };
        el.remove();
      }
    }
    let cursor = list.firstElementChild;
    for (const r of rows) {
      let el = keep.get(r.key);
      if (!el) {
        el = r.build();
        el.dataset.key = r.key;
        el.dataset.sig = r.sig;
      }
      if (el === cursor) cursor = cursor.nextElementSibling;
      else list.insertBefore(el, cursor);
    }
    this.tools.refresh();
    if (refocus) {
      const row = [...list.children].find((c) => c.dataset.key === refocus.key);
      (row?.querySelector(`[data-fk="${CSS.escape(refocus.fk)}"]`) || row)?.focus?.({ preventScroll: true });
    }
    if (atBottom || thread.justOpened) {
      scroller.scrollTop = scroller.scrollHeight;
      thread.justOpened = false;
    }
    const day = thread.parent ? formatDay(new Date(thread.parent.timestamp)) : '';
    list.setAttribute('aria-label', thread.parent ? `Thread of ${thread.parent.senderName}'s message, ${day}` : 'Thread');
  }

  clear() {
    this.tools.detach();
    this.els.list.replaceChildren();
    this.els.status.textContent = '';
  }
}
