// Reactions: the chips under a message (who reacted, toggled by a click)
// and the emoji picker that adds one.

import { h, svgIcon } from './dom.js';
import { closeOnOutside, moveFocus, placePopover } from './menu.js';
import { listNames, plural } from './format.js';

// EMOJI is the picker's fixed set, with names for screen readers.
export const EMOJI = [
  ['👍', 'thumbs up'], ['👎', 'thumbs down'], ['😄', 'smile'], ['😂', 'tears of joy'],
  ['🎉', 'party'], ['❤️', 'heart'], ['🙏', 'thank you'], ['👀', 'eyes'],
  ['🚀', 'rocket'], ['🔥', 'fire'], ['✅', 'done'], ['❌', 'no'],
  ['💯', 'hundred'], ['🤔', 'thinking'], ['😮', 'surprised'], ['😢', 'sad'],
];
const EMOJI_NAMES = new Map(EMOJI);

// SMILE_PLUS is the icon of "add a reaction" buttons.
export const SMILE_PLUS = 'M20 12a8 8 0 11-8-8M8.5 14.5a4.5 4.5 0 007 0M9 9.5h.01M15 9.5h.01M17 2v6M14 5h6';

// reactionsBar renders a message's reactions. ctx: me, nameOf(userId),
// onToggle(emoji), onAdd(button).
export function reactionsBar(reactions, ctx) {
  const chips = reactions.map((r) => {
    const mine = r.userIds.includes(ctx.me.userId);
    const names = r.userIds.map((id) => (id === ctx.me.userId ? 'you' : ctx.nameOf(id)));
    const who = listNames(names, 8);
    const label = `${EMOJI_NAMES.get(r.emoji) || r.emoji}: ${plural(r.count, 'reaction')} from ${who}` +
      (mine ? '. Press to remove yours.' : '. Press to add yours.');
    return h('button', {
      type: 'button', class: mine ? 'reaction is-mine' : 'reaction', 'aria-pressed': String(mine),
      'aria-label': label, title: `${who} reacted with ${r.emoji}`, dataset: { fk: `r:${r.emoji}`, emoji: r.emoji },
      onclick: () => ctx.onToggle(r.emoji),
    }, h('span', { 'aria-hidden': 'true', text: r.emoji }), h('span', { class: 'reaction-count', 'aria-hidden': 'true', text: String(r.count) }));
  });
  const add = h('button', {
    type: 'button', class: 'reaction reaction-add', 'aria-label': 'Add a reaction', title: 'Add a reaction',
    dataset: { fk: 'r:+' }, onclick: (e) => ctx.onAdd(e.currentTarget),
  }, svgIcon(SMILE_PLUS));
  return h('div', { class: 'msg-reactions', role: 'group', 'aria-label': 'Reactions' }, ...chips, add);
}

// EmojiPicker is the popover with EMOJI, one for the page.
export class EmojiPicker {
  constructor(el) {
    this.el = el;
    this.onPick = null;
    this.returnTo = null;
    this.stopOutside = null;
    this.anchor = null;
    el.append(...EMOJI.map(([emoji, name]) => h('button', {
      type: 'button', class: 'emoji-btn', 'aria-label': name, title: name, text: emoji,
      onclick: () => this.pick(emoji),
    })));
    el.addEventListener('keydown', (e) => {
      if (moveFocus(e, [...el.querySelectorAll('.emoji-btn')], { columns: 8 })) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.close(true);
      } else if (e.key === 'Tab') {
        e.preventDefault(); // a small grid: the arrow keys move in it
      }
    });
  }

  get isOpen() {
    return !this.el.hidden;
  }

  // open shows the picker at anchor; onPick(emoji) is called with the
  // choice. Focus returns to returnTo (or anchor) when it closes.
  open(anchor, onPick, returnTo = anchor) {
    this.close(false);
    this.onPick = onPick;
    this.returnTo = returnTo;
    this.anchor = anchor;
    placePopover(this.el, anchor);
    this.stopOutside = closeOnOutside(this.el, anchor, () => this.close(false));
    this.el.querySelector('.emoji-btn').focus();
  }

  pick(emoji) {
    const onPick = this.onPick;
    this.close(true);
    onPick?.(emoji);
  }

  close(refocus) {
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.stopOutside?.();
    this.stopOutside = null;
    this.onPick = null;
    const back = this.returnTo?.isConnected ? this.returnTo : this.anchor?.closest?.('.msg');
    this.returnTo = null;
    this.anchor = null;
    if (refocus && back?.isConnected) back.focus({ preventScroll: true });
  }
}
