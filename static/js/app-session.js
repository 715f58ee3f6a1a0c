// Signing in and out: the sign-in form, resuming with the stored token,
// the server's answers to auth, and loggedOut. Methods of App (app.js).

import * as storage from './storage.js';
import { plural } from './format.js';

export const sessionMethods = {
  onConnected() {
    this.greeted = true;
    this.renderConnection();
    if (this.token) this.authWithToken();
    else if (this.signInRequest) this.sendSignIn();
  },

  authWithToken() {
    this.authing = 'token';
    this.send('auth', { token: this.token });
  },

  showSignIn(message = '', note = false) {
    this.shell.showSignIn();
    document.title = 'parley';
    this.setSignInBusy(false);
    this.showSignInError(message, note);
    const { username } = this.els;
    if (!username.value) username.focus();
  },

  // showSignInError shows a problem, or with note a neutral remark.
  showSignInError(message, note = false) {
    const el = this.els.signinError;
    el.textContent = message;
    el.hidden = !message;
    el.classList.toggle('form-note', note);
  },

  setSignInBusy(busy) {
    this.els.signinSubmit.disabled = busy;
    this.els.signinSubmit.textContent = busy ? 'Signing in…' : 'Continue';
  },

  signIn() {
    const username = this.els.username.value.trim();
    const password = this.els.password.value;
    if (!username) return this.signInFailed('Enter a username.', this.els.username);
    if (!password) return this.signInFailed('Enter a password.', this.els.password);
    this.showSignInError('');
    this.setSignInBusy(true);
    this.signInRequest = { username, password };
    if (this.greeted) this.sendSignIn();
    else {
      this.conn.reconnectNow();
      this.renderConnection();
    }
  },

  signInFailed(message, field) {
    this.setSignInBusy(false);
    this.showSignInError(message);
    field?.focus();
  },

  sendSignIn() {
    this.authing = 'password';
    this.send('auth', this.signInRequest);
  },

  signOut() {
    this.composer.stopTyping();
    this.signingOut = true;
    if (!this.send('logout', {})) this.onLoggedOut({});
  },

  // onLoggedOut: this tab or another of this browser signed out, or the
  // server ended the session (a password change elsewhere, say).
  onLoggedOut(d) {
    const mine = this.signingOut;
    this.signingOut = false;
    this.token = null;
    storage.saveToken(null);
    this.authed = false;
    this.everAuthed = false;
    this.resetUser();
    this.showSignIn(mine ? 'You have signed out.' : `You were signed out${d.reason ? ` (${d.reason})` : ''}.`, true);
  },

  onAuthError(d) {
    const how = this.authing;
    this.authing = null;
    if (d.code === 'already_authenticated') return;
    if (d.code === 'rate_limited') {
      const wait = Math.ceil(d.retryAfter || 1);
      if (how === 'token') {
        setTimeout(() => this.greeted && !this.authed && this.token && this.authWithToken(), wait * 1000);
        return;
      }
      this.signInRequest = null;
      return this.signInFailed(`${d.message} Try again in ${plural(wait, 'second')}.`);
    }
    if (how === 'token' && d.code !== 'auth_failed') {
      // The server could not check the token just now; it is still good.
      setTimeout(() => this.greeted && !this.authed && this.token && this.authWithToken(), 2000);
      return;
    }
    if (how === 'token') {
      // The token expired or was revoked: sign in again.
      this.token = null;
      storage.saveToken(null);
      this.everAuthed = false;
      this.resetUser();
      this.showSignIn('Your session has ended. Please sign in again.');
      return;
    }
    this.signInRequest = null;
    const field = d.code === 'invalid_password' ? this.els.password
      : d.code === 'invalid_username' || d.code === 'bad_request' ? this.els.username : this.els.password;
    this.signInFailed(d.message || d.code, field);
  },
};
