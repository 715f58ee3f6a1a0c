// Reactions: the chips under a message (who reacted, toggled by a click)
// and the emoji picker that adds one.

import { h, svgIcon } from './dom.js';
import { closeOnOutside, moveFocus, placePopover } from './menu.js';
import { listNames, plural } from './format.js';

// EMOJI are the usual reactions, first in the picker, with names for
// screen readers.
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
    const label = `${EMOJI_NAMES.get(r.emoji) || knownNames?.get(r.emoji) || r.emoji}: ${plural(r.count, 'reaction')} from ${who}` +
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

// Picker: EMOJI first ("Frequently used"), then every emoji by group, or
// those whose name or keywords match a search. The full list
// (../emoji/data.js, about 30 KB gzipped) loads the first time the picker
// opens. COLUMNS matches the grid in app.css; at most MAX_RESULTS show
// for a search.
const COLUMNS = 8;
const MAX_RESULTS = 160;
const GROUP_ICONS = ['😀', '👋', '🐶', '🍕', '✈️', '⚽', '💡', '❤️', '🏁'];

// loadEmoji returns the full list: [{ e, g, name, words }].
let emojiList = null;
let knownNames = null; // emoji -> name, once the list is loaded
function loadEmoji() {
  emojiList ??= import('../emoji/data.js').then((m) => ({
    groups: m.GROUPS,
    all: m.DATA.split('\n').map((line) => {
      const [e, g, name, kw] = line.split('|');
      return { e, g: Number(g), name, words: `${name} ${kw}`.split(/[\s:,-]+/).filter(Boolean) };
    }),
  }));
  return emojiList;
}

// matches: every word of the query starts a word of the emoji's name or
// keywords.
export function emojiMatches(item, query) {
  const q = query.toLowerCase().split(/\s+/).filter(Boolean);
  return q.length > 0 && q.every((w) => item.words.some((x) => x.startsWith(w)));
}

// EmojiPicker is the popover that adds a reaction, one for the page.
export class EmojiPicker {
  constructor(el) {
    this.el = el;
    this.onPick = null;
    this.returnTo = null;
    this.stopOutside = null;
    this.anchor = null;
    this.group = -1; // -1: frequently used
    this.list = null; // the full list, once loaded
    this.search = h('input', {
      type: 'search', class: 'emoji-search', placeholder: 'Search emoji', 'aria-label': 'Search emoji by name',
      autocomplete: 'off', spellcheck: 'false', 'aria-controls': 'emoji-grid',
    });
    this.tabs = h('div', { class: 'emoji-tabs', role: 'group', 'aria-label': 'Emoji groups' });
    this.heading = h('p', { class: 'emoji-heading', id: 'emoji-heading' });
    this.grid = h('div', { class: 'emoji-grid', id: 'emoji-grid', role: 'group', 'aria-labelledby': 'emoji-heading' });
    el.append(this.search, this.tabs, this.heading, this.grid);
    this.search.addEventListener('input', () => this.render());
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        this.grid.querySelector('.emoji-btn')?.focus();
      } else if (e.key === 'Enter') {
        e.preventDefault();
        const first = this.grid.querySelector('.emoji-btn');
        if (first) this.pick(first.textContent);
      }
    });
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        return this.close(true);
      }
      if (e.key === 'Tab') return this.trapTab(e);
      if (!this.grid.contains(e.target)) return;
      const buttons = [...this.grid.querySelectorAll('.emoji-btn')];
      if (e.key === 'ArrowUp' && buttons.indexOf(e.target) < COLUMNS) {
        e.preventDefault();
        return this.search.focus();
      }
      moveFocus(e, buttons, { columns: COLUMNS });
    });
    this.renderTabs();
    this.render();
  }

  get isOpen() {
    return !this.el.hidden;
  }

  // trapTab keeps Tab inside the picker (search, groups, emoji).
  trapTab(e) {
    const stops = [this.search, ...this.tabs.querySelectorAll('button'), this.grid.querySelector('.emoji-btn')].filter(Boolean);
    const i = stops.indexOf(document.activeElement.closest('.emoji-grid') ? stops.at(-1) : document.activeElement);
    const next = e.shiftKey ? (i <= 0 ? stops.length - 1 : i - 1) : (i + 1) % stops.length;
    e.preventDefault();
    stops[next].focus();
  }

  renderTabs() {
    const names = this.list?.groups || [];
    const tab = (g, icon, label) => h('button', {
      type: 'button', class: 'emoji-tab', 'aria-label': label, title: label, 'aria-pressed': String(this.group === g), text: icon,
      onclick: () => {
        this.group = g;
        this.search.value = '';
        this.renderTabs();
        this.render();
      },
    });
    this.tabs.replaceChildren(tab(-1, '🕘', 'Frequently used'), ...names.map((name, g) => tab(g, GROUP_ICONS[g] || '•', name)));
  }

  // render fills the grid: search results, a group, or the usual few.
  render() {
    const query = this.search.value.trim();
    let items;
    let heading;
    if (query) {
      if (!this.list) {
        this.heading.textContent = 'Loading emoji…';
        this.grid.replaceChildren();
        return;
      }
      const found = this.list.all.filter((it) => emojiMatches(it, query));
      items = found.slice(0, MAX_RESULTS).map((it) => [it.e, it.name]);
      heading = found.length ? `${found.length} for “${query}”` : `No emoji for “${query}”`;
    } else if (this.group >= 0 && this.list) {
      items = this.list.all.filter((it) => it.g === this.group).map((it) => [it.e, it.name]);
      heading = this.list.groups[this.group];
    } else {
      items = EMOJI;
      heading = 'Frequently used';
    }
    this.heading.textContent = heading;
    this.grid.replaceChildren(...items.map(([emoji, name]) => h('button', {
      type: 'button', class: 'emoji-btn', 'aria-label': name, title: name, text: emoji,
      onclick: () => this.pick(emoji),
    })));
  }

  // open shows the picker at anchor; onPick(emoji) is called with the
  // choice. Focus returns to returnTo (or anchor) when it closes.
  open(anchor, onPick, returnTo = anchor) {
    this.close(false);
    this.onPick = onPick;
    this.returnTo = returnTo;
    this.anchor = anchor;
    this.search.value = '';
    this.group = -1;
    this.renderTabs();
    this.render();
    placePopover(this.el, anchor);
    this.stopOutside = closeOnOutside(this.el, anchor, () => this.close(false));
    this.search.focus();
    if (!this.list) {
      loadEmoji().then((list) => {
        this.list = list;
        knownNames = new Map(list.all.map((it) => [it.e, it.name]));
        this.renderTabs();
        if (this.isOpen) this.render();
      }, () => {
        this.heading.textContent = 'The emoji list did not load; the usual ones are here.';
      });
    }
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
