// Shell: the page's chrome around the conversation. Which view shows
// (loading, sign-in, password reset, app), the sidebar drawer and member
// panel on narrow screens, the connection banner, dialogs and toasts.

import { byId, h } from './dom.js';

// Below NARROW the sidebar is a drawer; below WIDE the member list is
// an overlay instead of a column. They match the breakpoints in app.css.
const NARROW = window.matchMedia('(max-width: 767px)');
const WIDE = window.matchMedia('(min-width: 1100px)');

// A toast stays TOAST_MS on screen.
const TOAST_MS = 6000;

export class Shell {
  constructor() {
    this.boot = byId('boot');
    this.signin = byId('signin');
    this.reset = byId('reset');
    this.app = byId('app');
    this.main = byId('main');
    this.sidebar = byId('sidebar');
    this.scrim = byId('scrim');
    this.menuButton = byId('sidebar-open');
    this.members = byId('members');
    this.membersToggle = byId('members-toggle');
    this.banner = byId('conn-banner');
    this.bannerText = byId('conn-text');
    this.dot = byId('conn-dot');
    this.toasts = byId('toasts');
    this.dialog = byId('rooms-dialog');
    this.membersCollapsed = false; // wide screens: the column is hidden
    this.panel = null; // the side panel shown (thread or search results), or null
    this.countdown = 0;
    this.confirmDialog = byId('confirm-dialog');

    this.menuButton.addEventListener('click', () => this.openDrawer());
    byId('sidebar-close').addEventListener('click', () => this.closeDrawer(true));
    this.scrim.addEventListener('click', () => {
      this.closeDrawer(true);
      this.closeMembers();
      if (this.panelCovers) this.closePanel(this.panel);
    });
    this.membersToggle.addEventListener('click', () => this.toggleMembers());
    byId('members-close').addEventListener('click', () => this.closeMembers(true));
    byId('rooms-dialog-close').addEventListener('click', () => this.dialog.close());
    for (const btn of document.querySelectorAll('dialog [data-close]')) {
      btn.addEventListener('click', () => btn.closest('dialog').close());
    }
    document.addEventListener('keydown', (e) => {
      if (e.key !== 'Escape' || e.defaultPrevented || document.querySelector('dialog[open]')) return;
      if (this.app.classList.contains('drawer-open')) this.closeDrawer(true);
      else if (this.app.classList.contains('members-open')) this.closeMembers(true);
      else if (this.panel && this.panel.contains(document.activeElement)) this.panel.querySelector('.side-header .icon-btn')?.click();
    });
    NARROW.addEventListener('change', () => this.closeDrawer());
    WIDE.addEventListener('change', () => this.syncMembers());
  }

  get narrow() {
    return NARROW.matches;
  }

  showBoot() {
    this.setBootText('Signing you in…');
    this.show(this.boot);
  }

  setBootText(text) {
    this.boot.querySelector('.boot-text').textContent = text;
  }

  showSignIn() {
    this.show(this.signin);
  }

  // showReset shows the "choose a new password" view of a reset link.
  showReset() {
    this.show(this.reset);
  }

  showApp() {
    this.show(this.app);
  }

  // show makes view the one on screen; dialogs belong to the app and
  // close when it goes.
  show(view) {
    for (const v of [this.boot, this.signin, this.reset, this.app]) v.hidden = v !== view;
    if (view !== this.app) {
      for (const d of document.querySelectorAll('dialog[open]')) d.close();
    }
  }

  openDrawer() {
    this.app.classList.add('drawer-open');
    this.menuButton.setAttribute('aria-expanded', 'true');
    this.scrim.hidden = false;
    this.main.inert = true;
    this.sidebar.querySelector('.nav-item.active, .nav-item, button')?.focus();
  }

  // closeDrawer hides the drawer; refocus returns focus to its button.
  closeDrawer(refocus = false) {
    if (!this.app.classList.contains('drawer-open')) return;
    this.app.classList.remove('drawer-open');
    this.menuButton.setAttribute('aria-expanded', 'false');
    this.main.inert = false;
    this.scrim.hidden = !this.app.classList.contains('members-open');
    if (refocus) this.menuButton.focus();
  }

  // setMembersAvailable shows the member list control for rooms only.
  setMembersAvailable(on) {
    this.membersToggle.hidden = !on;
    this.app.classList.toggle('no-members', !on);
    if (!on) this.closeMembers();
    this.syncMembers();
  }

  toggleMembers() {
    if (this.panel) {
      // The member list takes the place of the side panel.
      this.panel.querySelector('.side-header .icon-btn')?.click();
      if (WIDE.matches) {
        this.membersCollapsed = false;
        this.syncMembers();
        return;
      }
    }
    if (WIDE.matches) {
      this.membersCollapsed = !this.membersCollapsed;
      this.syncMembers();
    } else if (this.app.classList.contains('members-open')) {
      this.closeMembers(true);
    } else {
      this.app.classList.add('members-open');
      this.scrim.hidden = false;
      this.syncMembers();
      this.members.querySelector('button')?.focus();
    }
  }

  closeMembers(refocus = false) {
    if (!this.app.classList.contains('members-open')) return;
    this.app.classList.remove('members-open');
    this.scrim.hidden = !this.app.classList.contains('drawer-open');
    this.syncMembers();
    if (refocus) this.membersToggle.focus();
  }

  // openPanel shows a side panel (thread or search results) where the
  // member list is; on narrower screens it covers the conversation.
  openPanel(panel) {
    if (this.panel && this.panel !== panel) this.panel.querySelector('.side-header .icon-btn')?.click();
    this.closeMembers();
    this.panel = panel;
    panel.hidden = false;
    this.app.classList.add('panel-open');
    if (this.panelCovers) this.scrim.hidden = false;
    this.syncMembers();
  }

  closePanel(panel) {
    if (!panel || this.panel !== panel) return;
    panel.hidden = true;
    this.panel = null;
    this.app.classList.remove('panel-open');
    this.scrim.hidden = !this.app.classList.contains('drawer-open') && !this.app.classList.contains('members-open');
    this.syncMembers();
  }

  // panelCovers: side panels are overlays (below the WIDE breakpoint).
  get panelCovers() {
    return !WIDE.matches;
  }

  // confirm asks a yes-or-no question in a dialog: { title, text,
  // preview, ok }. It resolves to true when the user confirms.
  confirm({ title, text, preview = '', ok = 'OK' }) {
    const d = this.confirmDialog;
    byId('confirm-title').textContent = title;
    byId('confirm-text').textContent = text;
    const pre = byId('confirm-preview');
    pre.textContent = preview;
    pre.hidden = !preview;
    const okBtn = byId('confirm-ok');
    okBtn.textContent = ok;
    return new Promise((resolve) => {
      const form = byId('confirm-form');
      const onSubmit = (e) => {
        e.preventDefault();
        d.close('ok');
      };
      form.addEventListener('submit', onSubmit);
      d.addEventListener('close', () => {
        form.removeEventListener('submit', onSubmit);
        resolve(d.returnValue === 'ok');
      }, { once: true });
      d.returnValue = '';
      d.showModal();
      // The safe choice has the focus: Enter does not destroy anything.
      d.querySelector('[data-close]').focus();
    });
  }

  syncMembers() {
    this.app.classList.toggle('members-collapsed', this.membersCollapsed);
    const shown = WIDE.matches ? !this.membersCollapsed && !this.panel : this.app.classList.contains('members-open');
    this.membersToggle.setAttribute('aria-expanded', String(shown && !this.membersToggle.hidden));
    this.membersToggle.classList.toggle('is-on', shown);
  }

  // setConnection shows the connection's state. authed: signed in on the
  // current socket; everAuthed: this page has been signed in before, so a
  // drop is a reconnect, not a first connection.
  setConnection(status, authed, reconnect) {
    clearInterval(this.countdown);
    const state = authed ? 'ok' : status.state === 'open' || status.state === 'connecting' ? 'busy' : 'down';
    this.dot.className = `conn-dot conn-${state}`;
    this.dot.setAttribute('aria-label', authed ? 'Connected' : 'Not connected');
    this.app.classList.toggle('is-offline', !authed);
    byId('me-status').textContent = authed ? 'Online' : 'Offline';
    if (authed) {
      this.banner.hidden = true;
      return;
    }
    const why = status.code === 1001 ? 'The server is restarting.'
      : status.code === 1013 ? 'The connection fell behind.'
      : navigator.onLine === false ? 'You are offline.'
      : 'Connection lost.';
    const render = () => {
      let text;
      if (status.state === 'open') text = reconnect ? 'Reconnected; catching up…' : 'Signing in…';
      else if (status.state === 'connecting') text = `${why} Reconnecting…`;
      else if (status.state === 'waiting') {
        const secs = Math.max(1, Math.ceil((status.retryAt - Date.now()) / 1000));
        text = `${why} Reconnecting in ${secs}s…`;
      } else text = 'Disconnected.';
      this.bannerText.textContent = text;
    };
    render();
    byId('reconnect-now').hidden = status.state !== 'waiting';
    this.banner.hidden = false;
    if (status.state === 'waiting') this.countdown = setInterval(render, 1000);
  }

  toast(text, kind = 'info') {
    const el = h('div', { class: `toast toast-${kind}` }, h('span', { text }));
    const close = h('button', { type: 'button', class: 'icon-btn icon-btn-sm', 'aria-label': 'Dismiss', text: '×', onclick: () => el.remove() });
    el.append(close);
    this.toasts.append(el);
    setTimeout(() => el.remove(), TOAST_MS);
  }
}
