// Search: the box in the header sends search {query}; the results panel
// lists what the server found in the user's rooms and direct
// conversations, and a result opens its conversation at that message.
// Methods of App (app.js); rendering is search.js.

import { dmKey, roomKey } from './conversation.js';
import { byId } from './dom.js';
import { renderResults } from './search.js';

// The server's bounds of a query, in characters (PROTOCOL.md, "Search").
const MIN_QUERY = 2;
const MAX_QUERY = 100;
// RESULTS is how many results are asked for.
const RESULTS = 50;

export const searchMethods = {
  initSearch() {
    this.searchQuery = ''; // the query waiting for results
    const s = {
      form: byId('search-form'), input: byId('search-input'), panel: byId('search-panel'), results: byId('search-results'),
      summary: byId('search-summary'), header: document.querySelector('.conv-header'), open: byId('search-open'),
    };
    this.srch = s;
    s.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.runSearch(s.input.value);
    });
    s.input.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape') return;
      e.preventDefault();
      e.stopPropagation();
      if (s.input.value) s.input.value = '';
      else this.closeSearchBox();
    });
    s.open.addEventListener('click', () => {
      s.header.classList.add('search-active');
      s.input.focus();
    });
    byId('search-cancel').addEventListener('click', () => this.closeSearchBox(true));
    byId('search-close').addEventListener('click', () => this.closeSearch(true));
    // Ctrl+K (⌘K) goes to the search box, as in other chat apps.
    document.addEventListener('keydown', (e) => {
      if (e.key.toLowerCase() !== 'k' || !(e.ctrlKey || e.metaKey) || e.altKey || !this.me || document.querySelector('dialog[open]')) return;
      e.preventDefault();
      if (this.shell.narrow) s.header.classList.add('search-active');
      s.input.focus();
      s.input.select();
    });
  },

  closeSearchBox(refocus = false) {
    this.srch.header.classList.remove('search-active');
    if (refocus) this.srch.open.focus();
    else this.srch.input.blur();
  },

  runSearch(raw) {
    const s = this.srch;
    const query = raw.trim();
    this.shell.openPanel(s.panel);
    if ([...query].length < MIN_QUERY) {
      this.searchQuery = '';
      s.summary.textContent = `Type at least ${MIN_QUERY} characters to search.`;
      s.results.replaceChildren();
      return;
    }
    if (!this.authed || !this.send('search', { query: query.slice(0, MAX_QUERY), limit: RESULTS })) {
      s.summary.textContent = 'You are not connected; search once you are back.';
      return;
    }
    this.searchQuery = query.slice(0, MAX_QUERY);
    s.summary.textContent = `Searching for “${this.searchQuery}”…`;
    s.results.setAttribute('aria-busy', 'true');
  },

  onSearchResults(d) {
    const s = this.srch;
    if (d.query !== this.searchQuery) return; // an older search
    this.searchQuery = '';
    s.results.removeAttribute('aria-busy');
    for (const m of d.results || []) this.learnName(m.senderId, m.senderName);
    renderResults(s.results, s.summary, d, (m) => this.resultPlace(m), (key, m) => this.openResult(key, m));
    s.results.parentElement.scrollTop = 0;
  },

  onSearchError(d) {
    this.searchQuery = '';
    this.srch.results.removeAttribute('aria-busy');
    this.srch.summary.textContent = d.message || d.code;
  },

  // resultPlace says which conversation a result is in.
  resultPlace(m) {
    if (m.roomId) return { key: roomKey(m.roomId), label: `#${m.roomId}` };
    const mine = m.senderId === this.me.userId;
    const peer = mine ? m.targetUserId : m.senderId;
    const name = mine ? m.targetUsername || this.nameOf(peer) : m.senderName;
    return peer ? { key: dmKey(peer), label: `Direct messages with ${name}`, peer, name } : null;
  },

  openResult(key, m) {
    let conv = this.convs.get(key);
    if (!conv && !m.roomId) {
      const where = this.resultPlace(m);
      conv = this.ensureDM(where.peer, where.name);
    }
    if (!conv) {
      this.shell.toast(`You are no longer in #${m.roomId}.`, 'error');
      return;
    }
    // On a narrow screen the panel covers the conversation.
    if (this.shell.panelCovers) this.closeSearch(false);
    this.closeSearchBox();
    this.jumpTo(conv, m.id);
  },

  closeSearch(refocus) {
    this.searchQuery = '';
    this.shell.closePanel(this.srch.panel);
    this.closeSearchBox();
    if (refocus) (this.shell.narrow ? this.srch.open : this.srch.input).focus();
  },
};
