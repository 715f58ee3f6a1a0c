// MessageTools is the row of actions (react, reply, thread, edit, delete)
// of the message under the pointer or holding the focus. There is one
// such element per list, moved into the active message, so a long
// conversation does not carry hundreds of hidden buttons, and Tab from a
// message reaches its actions.

import { h, svgIcon } from './dom.js';
import { SMILE_PLUS } from './reactions.js';

const ICONS = {
  reply: 'M9 14L4 9l5-5M4 9h10a6 6 0 016 6v3',
  thread: 'M21 15a2 2 0 01-2 2H7l-4 4V5a2 2 0 012-2h14a2 2 0 012 2z',
  edit: 'M12 20h9M16.5 3.5a2.12 2.12 0 013 3L7 19l-4 1 1-4z',
  delete: 'M3 6h18M8 6V4h8v2M19 6l-1 14H6L5 6M10 11v6M14 11v6',
};

export class MessageTools {
  // list: the <ol> of messages. actions(id) returns the actions allowed
  // on that message: { react, reply, thread, edit, delete } callbacks
  // (absent ones are not offered), or null when none.
  constructor(list, actions) {
    this.list = list;
    this.actions = actions;
    this.li = null;
    this.el = h('div', { class: 'msg-tools', role: 'group' });
    list.addEventListener('mouseover', (e) => {
      const li = e.target.closest?.('.msg[data-id]');
      if (li && li !== this.li && !this.busy()) this.attach(li);
    });
    list.addEventListener('mouseleave', () => {
      if (!this.holdsFocus()) this.detach();
    });
    list.addEventListener('focusin', (e) => {
      const li = e.target.closest?.('.msg[data-id]');
      if (li && li !== this.li) this.attach(li);
    });
    list.addEventListener('focusout', (e) => {
      if (this.li && !this.li.contains(e.relatedTarget) && !this.li.matches(':hover')) this.detach();
    });
  }

  holdsFocus() {
    return !!this.li && this.li.contains(document.activeElement);
  }

  // busy: the focus is on one of the actions, so the pointer must not
  // take them away.
  busy() {
    return this.el.contains(document.activeElement);
  }

  attach(li) {
    const acts = this.actions(li.dataset.id);
    if (!acts) return this.detach();
    if (this.li && this.li !== li) setTabbable(this.li, false);
    setTabbable(li, true);
    const sender = li.querySelector('.msg-sender')?.textContent || '';
    this.el.setAttribute('aria-label', `Actions for the message from ${sender}`);
    const button = (name, label, onclick, extra = '') => h('button', {
      type: 'button', class: `icon-btn ${extra}`.trim(), 'aria-label': label, title: label, dataset: { tool: name, fk: `t:${name}` },
      onclick: (e) => onclick(e.currentTarget, li),
    }, svgIcon(name === 'react' ? SMILE_PLUS : ICONS[name]));
    const buttons = [];
    if (acts.react) buttons.push(button('react', 'Add a reaction', acts.react));
    if (acts.reply) buttons.push(button('reply', 'Reply', acts.reply));
    if (acts.thread) buttons.push(button('thread', 'Open the thread', acts.thread));
    if (acts.edit) buttons.push(button('edit', 'Edit', acts.edit));
    if (acts.delete) buttons.push(button('delete', 'Delete…', acts.delete, 'tool-danger'));
    if (!buttons.length) return this.detach();
    this.el.replaceChildren(...buttons);
    this.li = li;
    li.append(this.el);
  }

  detach() {
    if (this.li) setTabbable(this.li, false);
    this.el.remove();
    this.li = null;
  }

  // refresh follows the active message after the list was re-rendered
  // (its row may have been rebuilt), or lets go of it if it is gone.
  refresh() {
    if (!this.li) return;
    if (this.li.isConnected && this.el.parentNode === this.li) return this.attach(this.li);
    const id = this.li.dataset.id;
    const li = this.list.querySelector(`.msg[data-id="${id}"]`);
    if (li) this.attach(li);
    else this.detach();
  }
}

// setTabbable lets Tab reach the links and buttons inside a message row
// (on), or takes them out of the tab order (off): the list of messages is
// one tab stop, and only the active message's controls follow it.
export function setTabbable(li, on) {
  for (const el of li.querySelectorAll('a[href], button')) {
    if (!el.closest('.msg-tools')) el.tabIndex = on ? 0 : -1;
  }
}

// moveBetweenRows: in a list of messages (inside scroller, which has
// tabindex="0"), the arrow keys move the focus from message to message,
// and Home and End to the first and last. It returns whether it did.
export function moveBetweenRows(e, scroller, list) {
  if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return false;
  const t = e.target;
  if (t !== scroller && !t.matches?.('.msg')) return false;
  const rows = [...list.querySelectorAll('.msg[data-id]')];
  if (!rows.length) return false;
  const i = rows.indexOf(t);
  let next = null;
  if (e.key === 'ArrowUp') next = i < 0 ? rows.at(-1) : rows[Math.max(0, i - 1)];
  else if (e.key === 'ArrowDown') next = i < 0 ? rows.at(-1) : rows[Math.min(rows.length - 1, i + 1)];
  else if (e.key === 'Home' && i >= 0) next = rows[0];
  else if (e.key === 'End' && i >= 0) next = rows.at(-1);
  if (!next) return false;
  e.preventDefault();
  next.focus({ preventScroll: true });
  next.scrollIntoView({ block: 'nearest' });
  return true;
}
