// Popovers next to a control: placing them on screen, and an accessible
// menu (role="menu") operated with the arrow keys, Home and End, closed by
// Escape, Tab or a click elsewhere, which returns focus to its button.

import { h } from './dom.js';

// EDGE_PX keeps popovers this far from the edges of the window.
const EDGE_PX = 8;

// placePopover shows el (position: fixed) next to anchor: below it and
// aligned to its right edge, or above it when there is no room below.
export function placePopover(el, anchor, gap = 6) {
  el.hidden = false;
  const r = anchor.getBoundingClientRect();
  const w = el.offsetWidth;
  const ht = el.offsetHeight;
  const vw = document.documentElement.clientWidth;
  const vh = document.documentElement.clientHeight;
  const left = Math.max(EDGE_PX, Math.min(r.right - w, vw - w - EDGE_PX));
  let top = r.bottom + gap;
  if (top + ht > vh - EDGE_PX && r.top - gap - ht >= EDGE_PX) top = r.top - gap - ht;
  top = Math.max(EDGE_PX, Math.min(top, vh - ht - EDGE_PX));
  // CSSOM, not a style attribute: the page's CSP allows this.
  el.style.left = `${Math.round(left)}px`;
  el.style.top = `${Math.round(top)}px`;
}

// closeOnOutside calls close when a pointer goes down outside el and
// anchor; it returns the function that stops listening.
export function closeOnOutside(el, anchor, close) {
  const onDown = (e) => {
    if (!el.contains(e.target) && !anchor?.contains(e.target)) close(false);
  };
  document.addEventListener('pointerdown', onDown, true);
  return () => document.removeEventListener('pointerdown', onDown, true);
}

// moveFocus handles arrow keys, Home and End among items; it returns
// whether it did.
export function moveFocus(e, items, { columns = 1 } = {}) {
  const i = items.indexOf(document.activeElement);
  let next = -1;
  switch (e.key) {
    case 'ArrowDown': next = i < 0 ? 0 : Math.min(items.length - 1, i + columns); break;
    case 'ArrowUp': next = i < 0 ? items.length - 1 : Math.max(0, i - columns); break;
    case 'ArrowRight': if (columns > 1) next = Math.min(items.length - 1, i + 1); break;
    case 'ArrowLeft': if (columns > 1) next = Math.max(0, i - 1); break;
    case 'Home': next = 0; break;
    case 'End': next = items.length - 1; break;
  }
  if (columns === 1 && (e.key === 'ArrowDown' || e.key === 'ArrowUp') && i >= 0) {
    next = (i + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length;
  }
  if (next < 0) return false;
  e.preventDefault();
  items[next]?.focus();
  return true;
}

// Menu is one popup menu element, reused for every menu of the page.
export class Menu {
  constructor(el) {
    this.el = el;
    this.anchor = null;
    this.stopOutside = null;
    el.addEventListener('keydown', (e) => {
      const items = [...el.querySelectorAll('.menu-item')];
      if (moveFocus(e, items)) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.close(true);
      } else if (e.key === 'Tab') {
        this.close(true);
      }
    });
  }

  get isOpen() {
    return !this.el.hidden;
  }

  // open shows items next to anchor (a button with aria-haspopup="menu").
  // items: { label, onSelect, danger, dataset } or { separator } or
  // { heading }.
  open(anchor, label, items) {
    this.close(false);
    this.anchor = anchor;
    this.el.setAttribute('aria-label', label);
    this.el.replaceChildren(...items.map((item) => {
      if (item.separator) return h('div', { class: 'menu-sep', role: 'separator' });
      if (item.heading) return h('div', { class: 'menu-label', role: 'presentation', text: item.heading });
      return h('button', {
        type: 'button', role: 'menuitem', tabindex: '-1', class: item.danger ? 'menu-item is-danger' : 'menu-item',
        dataset: item.dataset, text: item.label,
        onclick: () => {
          this.close(true);
          item.onSelect();
        },
      });
    }));
    anchor.setAttribute('aria-expanded', 'true');
    placePopover(this.el, anchor);
    this.stopOutside = closeOnOutside(this.el, anchor, () => this.close(false));
    this.el.querySelector('.menu-item')?.focus();
  }

  close(refocus) {
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.stopOutside?.();
    this.stopOutside = null;
    const anchor = this.anchor;
    this.anchor = null;
    anchor?.setAttribute('aria-expanded', 'false');
    if (refocus && anchor?.isConnected) anchor.focus();
  }
}
