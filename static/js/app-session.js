// Signing in and out: the sign-in form, resuming with the stored token,
// following the token other tabs of this browser store, the server's
// answers to auth, and loggedOut. Methods of App (app.js).

import * as storage from './storage.js';
import { retryText } from './format.js';

// A tab signed out because the password was changed or reset waits up to
// FOLLOW_MS for the tab of this browser that did it to store its new
// token, before asking the user to sign in. The token comes with the very
// answer that caused the sign-out, so the wait is normally a few ms.
const FOLLOW_MS = 3000;

export const sessionMethods = {
  onConnected() {
    this.greeted = true;
    this.renderConnection();
    if (this.resetToken) {
      // A reset link signs in with a new password, never the stored token.
      if (this.resetRequest) this.sendReset();
    } else if (this.token) {
      this.authWithToken();
    } else if (this.signInRequest) {
      this.sendSignIn();
    }
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
    this.els.signinSubmit.textContent = busy ? (this.creating ? 'Creating your account…' : 'Signing in…')
      : this.creating ? 'Create account' : 'Sign in';
  },

  // setSignInMode switches the form between signing in to an account
  // (auth {create: false}: a typo in a name never creates one) and
  // creating one (auth {create: true}, with the password twice).
  setSignInMode(creating, focus = false) {
    const els = this.els;
    this.creating = creating;
    els.signinTitle.textContent = creating ? 'Create your parley account' : 'Sign in to parley';
    els.signinLede.textContent = creating ? 'Choose a username and a password. Everyone on this server sees your username.'
      : 'Welcome back. New here? Create an account below.';
    els.signinConfirmField.hidden = !creating;
    els.signinPasswordHint.hidden = !creating;
    els.password.autocomplete = creating ? 'new-password' : 'current-password';
    els.signinSwitchText.textContent = creating ? 'Already have an account?' : 'New here?';
    els.signinSwitch.textContent = creating ? 'Sign in instead' : 'Create an account';
    this.setSignInBusy(false);
    this.showSignInError('');
    if (focus) (els.username.value ? els.password : els.username).focus();
  },

  signIn() {
    const username = this.els.username.value.trim();
    const password = this.els.password.value;
    if (!username) return this.signInFailed('Enter a username.', this.els.username);
    if (!password) return this.signInFailed('Enter a password.', this.els.password);
    if (this.creating) {
      if ([...password].length < 8) return this.signInFailed('Choose a password of at least 8 characters.', this.els.password);
      if (password !== this.els.signinConfirm.value) return this.signInFailed('The two passwords do not match.', this.els.signinConfirm);
    }
    this.showSignInError('');
    this.setSignInBusy(true);
    this.signInRequest = { username, password, create: !!this.creating };
    if (this.inviteToken && this.creating) this.signInRequest.invite = this.inviteToken;
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
  // server ended the session. When the password was changed or reset in
  // another tab of this browser, that tab stores its new token (the old
  // one is what was revoked): this tab follows it and stays signed in.
  onLoggedOut(d) {
    const mine = this.signingOut;
    this.signingOut = false;
    const revoked = this.token;
    this.token = null;
    this.authed = false;
    this.greeted = false; // the server closes this socket next
    const message = mine ? 'You have signed out.' : `You were signed out${d.reason ? ` (${d.reason})` : ''}.`;
    if (mine || !this.me) return this.endSession(revoked, message, true);
    const stored = storage.loadToken();
    if (stored && stored !== revoked) {
      // The server closes this socket next; sign in on the next one.
      this.token = stored;
      this.resumeOnClose = true;
      return;
    }
    if (d.reason !== 'password changed' && d.reason !== 'password reset') return this.endSession(revoked, message, true);
    clearTimeout(this.followTimer);
    this.followTimer = setTimeout(() => {
      this.followTimer = 0;
      this.endSession(revoked, message, true);
    }, FOLLOW_MS);
  },

  // onStoredToken: another tab of this browser stored a token (or removed
  // it: null). A tab waiting after a password change, or one showing the
  // sign-in form, signs in with it.
  onStoredToken(token) {
    if (!token || token === this.token || this.resetToken || this.authing) return;
    if (this.followTimer) {
      clearTimeout(this.followTimer);
      this.followTimer = 0;
    } else if (this.me) {
      return; // signed in here; this tab keeps its own session
    }
    this.token = token;
    if (this.greeted) this.authWithToken();
  },

  // endSession forgets the session whose token was revoked (or refused)
  // and shows the sign-in form. The stored token is removed only if it is
  // that one: another tab may have stored a newer one.
  endSession(revoked, message, note = false) {
    clearTimeout(this.followTimer);
    this.followTimer = 0;
    this.token = null;
    if (revoked && storage.loadToken() === revoked) storage.saveToken(null);
    this.authed = false;
    this.everAuthed = false;
    this.resetUser();
    this.showSignIn(message, note);
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
      return this.signInFailed(retryText(d.message, d.retryAfter));
    }
    if (how === 'token' && d.code !== 'auth_failed') {
      // The server could not check the token just now; it is still good.
      setTimeout(() => this.greeted && !this.authed && this.token && this.authWithToken(), 2000);
      return;
    }
    if (how === 'token') {
      // The token expired or was revoked. Another tab may have stored a
      // newer one since (a password change); otherwise sign in again.
      const stored = storage.loadToken();
      if (stored && stored !== this.token) {
        this.token = stored;
        return this.authWithToken();
      }
      return this.endSession(this.token, 'Your session has ended. Please sign in again.');
    }
    this.signInRequest = null;
    const field = d.code === 'invalid_password' ? this.els.password
      : d.code === 'invalid_username' || d.code === 'bad_request' || d.code === 'username_taken' ? this.els.username : this.els.password;
    this.signInFailed(d.message || d.code, field);
  },
};
