// Mention autocomplete: typing "@" and the start of a name in the
// composer lists the room's members who match; the arrow keys choose,
// Enter or Tab completes, Escape closes the list.

import { h } from './dom.js';
import { avatar } from './format.js';

// MAX_OPTIONS bounds the names listed at once.
const MAX_OPTIONS = 8;
// An "@name" being typed: after a start of text or a character that
// cannot be part of a name, up to the caret.
const TYPING_MENTION = /(^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]{0,32})$/;

export class MentionAutocomplete {
  // candidates() returns the usernames that may be mentioned.
  constructor(input, listbox, candidates) {
    this.input = input;
    this.list = listbox;
    this.candidates = candidates;
    this.options = [];
    this.active = 0;
    this.start = -1; // index of the "@" being completed
    input.addEventListener('input', () => this.update());
    input.addEventListener('click', () => this.update());
    input.addEventListener('blur', () => setTimeout(() => this.close(), 120));
  }

  get isOpen() {
    return !this.list.hidden;
  }

  update() {
    const { value, selectionStart, selectionEnd } = this.input;
    if (selectionStart !== selectionEnd) return this.close();
    const m = TYPING_MENTION.exec(value.slice(0, selectionStart));
    if (!m) return this.close();
    const prefix = m[2].toLowerCase();
    const names = this.candidates();
    const starts = names.filter((n) => n.toLowerCase().startsWith(prefix));
    const inside = names.filter((n) => !n.toLowerCase().startsWith(prefix) && n.toLowerCase().includes(prefix));
    const options = [...starts, ...inside].slice(0, MAX_OPTIONS);
    if (!options.length) return this.close();
    this.start = selectionStart - m[2].length - 1;
    this.options = options;
    this.active = 0;
    this.render();
  }

  render() {
    this.list.replaceChildren(...this.options.map((name, i) => h('li', {
      id: `mention-opt-${i}`, class: 'mention-option', role: 'option', 'aria-selected': String(i === this.active),
      dataset: { name },
      // mousedown, not click: the field keeps the focus.
      onmousedown: (e) => {
        e.preventDefault();
        this.choose(i);
      },
    }, avatar(name), h('span', { text: name }))));
    this.list.hidden = false;
    this.input.setAttribute('aria-activedescendant', `mention-opt-${this.active}`);
    this.list.children[this.active]?.scrollIntoView({ block: 'nearest' });
  }

  close() {
    if (this.list.hidden) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.options = [];
    this.input.removeAttribute('aria-activedescendant');
  }

  // onKeyDown handles the keys that drive an open list; true when it did.
  onKeyDown(e) {
    if (!this.isOpen) return false;
    switch (e.key) {
      case 'ArrowDown':
      case 'ArrowUp': {
        const n = this.options.length;
        this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        this.render();
        break;
      }
      case 'Enter':
      case 'Tab':
        if (e.shiftKey || e.isComposing) return false;
        this.choose(this.active);
        break;
      case 'Escape':
        this.close();
        break;
      default:
        return false;
    }
    e.preventDefault();
    e.stopPropagation();
    return true;
  }

  choose(i) {
    const name = this.options[i];
    if (!name) return;
    const { value, selectionStart } = this.input;
    const before = value.slice(0, this.start);
    const after = value.slice(selectionStart).replace(/^[A-Za-z0-9_.-]*/, '');
    const inserted = `@${name}${after.startsWith(' ') ? '' : ' '}`;
    this.input.value = before + inserted + after;
    const caret = before.length + inserted.length + (after.startsWith(' ') ? 1 : 0);
    this.input.setSelectionRange(caret, caret);
    this.close();
    this.input.dispatchEvent(new Event('input', { bubbles: true }));
  }
}
