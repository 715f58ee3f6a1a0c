// Passwords: changing one's own (changePassword), choosing a new one
// through a one-time reset link (https://HOST/#reset=TOKEN, redeemed with
// resetPassword on a connection that is not signed in), and, for admins,
// issuing such links (resetLink). Methods of App (app.js).

import { byId } from './dom.js';
import { formatFull, retryText } from './format.js';
import * as storage from './storage.js';

// MIN_PASSWORD is the server's minimum password length, in characters
// (PROTOCOL.md, "auth"); the server also checks it.
const MIN_PASSWORD = 8;

// resetTokenFromURL returns the token of a reset link (the page's URL
// fragment is "#reset=TOKEN"), or null. A mangled token is the server's to
// refuse, with a message the user can act on.
function resetTokenFromURL() {
  const m = /^#reset=(.*)$/.exec(window.location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

// newPasswordProblem checks a new password and its confirmation; it
// returns what is wrong and which field to fix, or null.
function newPasswordProblem(password, confirm) {
  if ([...password].length < MIN_PASSWORD) {
    return { message: `Choose a password of at least ${MIN_PASSWORD} characters.`, inConfirm: false };
  }
  if (password !== confirm) return { message: 'The two passwords do not match.', inConfirm: true };
  return null;
}

// errorText is an error frame for people.
const errorText = (d) => (d.code === 'rate_limited' ? retryText(d.message, d.retryAfter) : d.message || d.code);

function showFormError(el, message) {
  el.textContent = message;
  el.hidden = !message;
}

// clearFragment removes "#reset=…" from the address bar and the history
// entry, so the link is neither bookmarked nor reopened by Back.
function clearFragment() {
  history.replaceState(null, '', window.location.pathname + window.location.search);
}

export const accountMethods = {
  initAccount() {
    this.resetToken = resetTokenFromURL(); // the page was opened from a reset link
    this.resetRequest = null; // { resetToken, newPassword, sent } until answered
    this.passwordPending = false; // a changePassword is unanswered
    this.resetLinkFor = ''; // the user the reset link dialog is about
    this.resetLinkPending = false; // a resetLink is unanswered

    const el = (id) => byId(id);
    const a = {
      passwordDialog: el('password-dialog'), passwordForm: el('password-form'), passwordUsername: el('password-username'),
      passwordFields: el('password-fields'), passwordCurrent: el('password-current'), passwordNew: el('password-new'),
      passwordConfirm: el('password-confirm'), passwordError: el('password-error'), passwordDone: el('password-done'),
      passwordCancel: el('password-cancel'), passwordSubmit: el('password-submit'),
      resetForm: el('reset-form'), resetFields: el('reset-fields'), resetNew: el('reset-new'), resetConfirm: el('reset-confirm'),
      resetError: el('reset-error'), resetSubmit: el('reset-submit'), resetBack: el('reset-back'), resetConn: el('reset-conn'),
      resetPeer: el('reset-peer'),
      linkDialog: el('reset-link-dialog'), linkForm: el('reset-link-form'), linkTitle: el('reset-link-title'),
      linkLede: el('reset-link-lede'), linkResult: el('reset-link-result'), linkURL: el('reset-link-url'),
      linkCopy: el('reset-link-copy'), linkExpiry: el('reset-link-expiry'), linkCopied: el('reset-link-copied'),
      linkError: el('reset-link-error'), linkCancel: el('reset-link-cancel'), linkCreate: el('reset-link-create'),
    };
    this.acct = a;

    el('change-password').addEventListener('click', () => this.openPasswordDialog());
    a.passwordForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.changePassword();
    });
    a.resetForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submitReset();
    });
    a.resetBack.addEventListener('click', () => this.leaveReset());
    a.resetPeer.addEventListener('click', () => {
      const conv = this.currentConv();
      if (conv && !conv.isRoom) this.openResetLinkDialog(conv.name);
    });
    a.linkForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.requestResetLink();
    });
    a.linkCopy.addEventListener('click', () => this.copyResetLink());
    // A reset link pasted into the address bar of an open page changes
    // only the fragment: start over, on a connection that is not signed in.
    window.addEventListener('hashchange', () => {
      const token = resetTokenFromURL();
      if (token && token !== this.resetToken) window.location.reload();
    });
  },

  // --- changing one's password ---

  openPasswordDialog() {
    const a = this.acct;
    a.passwordForm.reset();
    a.passwordUsername.value = this.me.username; // for password managers
    a.passwordFields.hidden = false;
    a.passwordSubmit.hidden = false;
    a.passwordDone.hidden = true;
    a.passwordCancel.textContent = 'Cancel';
    this.setPasswordBusy(this.passwordPending);
    showFormError(a.passwordError, '');
    this.shell.closeDrawer();
    a.passwordDialog.showModal();
    a.passwordCurrent.focus();
  },

  setPasswordBusy(busy) {
    const btn = this.acct.passwordSubmit;
    btn.disabled = busy;
    btn.textContent = busy ? 'Changing…' : 'Change password';
  },

  passwordFailed(message, field) {
    const a = this.acct;
    this.setPasswordBusy(false);
    if (!a.passwordDialog.open) return this.shell.toast(`Your password was not changed: ${message}`, 'error');
    showFormError(a.passwordError, message);
    field?.focus();
  },

  changePassword() {
    const a = this.acct;
    const current = a.passwordCurrent.value;
    const next = a.passwordNew.value;
    if (this.passwordPending) return;
    if (!current) return this.passwordFailed('Enter your current password.', a.passwordCurrent);
    const problem = newPasswordProblem(next, a.passwordConfirm.value);
    if (problem) return this.passwordFailed(problem.message, problem.inConfirm ? a.passwordConfirm : a.passwordNew);
    if (next === current) return this.passwordFailed('The new password is the same as the current one.', a.passwordNew);
    if (!this.authed || !this.send('changePassword', { currentPassword: current, newPassword: next })) {
      return this.passwordFailed('You are not connected; try again in a moment.');
    }
    this.passwordPending = true;
    showFormError(a.passwordError, '');
    this.setPasswordBusy(true);
  },

  // onPasswordChanged: the old token is revoked; keep the new one. Other
  // tabs of this browser were signed out with the old one and follow this
  // one to the new token (see onLoggedOut).
  onPasswordChanged(d) {
    const a = this.acct;
    this.token = d.token;
    storage.saveToken(d.token);
    this.passwordPending = false;
    this.setPasswordBusy(false);
    const done = 'Your password has been changed. Your other devices were signed out; the tabs of this browser stay signed in.';
    if (!a.passwordDialog.open) return this.shell.toast(done);
    a.passwordForm.reset();
    a.passwordFields.hidden = true;
    a.passwordSubmit.hidden = true;
    showFormError(a.passwordError, '');
    a.passwordDone.textContent = done;
    a.passwordDone.hidden = false;
    a.passwordCancel.textContent = 'Done';
    a.passwordCancel.focus();
  },

  // --- choosing a new password through a reset link ---

  showReset() {
    const a = this.acct;
    this.shell.showReset();
    document.title = 'Choose a new password · parley';
    a.resetFields.hidden = false;
    a.resetSubmit.hidden = false;
    this.setResetBusy(false);
    showFormError(a.resetError, '');
    a.resetNew.focus();
  },

  setResetBusy(busy) {
    const a = this.acct;
    a.resetSubmit.disabled = busy;
    a.resetSubmit.textContent = busy ? 'Setting your password…' : 'Set password and sign in';
    a.resetBack.disabled = busy;
  },

  resetFailed(message, field) {
    this.setResetBusy(false);
    showFormError(this.acct.resetError, message);
    field?.focus();
  },

  submitReset() {
    const a = this.acct;
    if (this.resetRequest) return;
    const problem = newPasswordProblem(a.resetNew.value, a.resetConfirm.value);
    if (problem) return this.resetFailed(problem.message, problem.inConfirm ? a.resetConfirm : a.resetNew);
    showFormError(a.resetError, '');
    this.setResetBusy(true);
    this.resetRequest = { resetToken: this.resetToken, newPassword: a.resetNew.value, sent: false };
    if (this.greeted) this.sendReset();
    else {
      this.conn.reconnectNow();
      this.renderConnection();
    }
  },

  sendReset() {
    const { resetToken, newPassword } = this.resetRequest;
    if (!this.send('resetPassword', { resetToken, newPassword })) return;
    this.resetRequest.sent = true;
    this.authing = 'reset';
  },

  // resetDone: the reset link signed this page in (onAuthenticated has
  // stored the token and shown the app).
  resetDone() {
    this.resetToken = null;
    this.resetRequest = null;
    this.acct.resetForm.reset();
    this.setResetBusy(false);
    clearFragment();
    this.shell.toast('Your new password is set, and you are signed in.');
  },

  // leaveReset goes from the reset view to signing in: with the stored
  // session when there is one, else with the sign-in form.
  leaveReset() {
    this.resetToken = null;
    this.resetRequest = null;
    this.acct.resetForm.reset();
    clearFragment();
    this.token = storage.loadToken();
    if (!this.token) return this.showSignIn();
    this.shell.showBoot();
    if (this.greeted && !this.authing) this.authWithToken();
  },

  // --- admins: reset links for others ---

  openResetLinkDialog(username) {
    const a = this.acct;
    this.resetLinkFor = username;
    a.linkTitle.textContent = `Reset password for ${username}`;
    a.linkLede.textContent = `Create a one-time link that lets ${username} choose a new password, and pass it on to them. ` +
      `Whoever opens it can set the password, once, until it expires; using it signs ${username} out everywhere.`;
    a.linkResult.hidden = true;
    a.linkURL.value = '';
    a.linkCopied.textContent = '';
    a.linkCreate.hidden = false;
    this.setResetLinkBusy(this.resetLinkPending);
    a.linkCancel.textContent = 'Cancel';
    showFormError(a.linkError, '');
    this.shell.closeDrawer();
    a.linkDialog.showModal();
    a.linkCreate.focus();
  },

  setResetLinkBusy(busy) {
    const btn = this.acct.linkCreate;
    btn.disabled = busy;
    btn.textContent = busy ? 'Creating…' : 'Create link';
  },

  requestResetLink() {
    if (this.resetLinkPending) return;
    if (!this.authed || !this.send('resetLink', { username: this.resetLinkFor })) {
      return showFormError(this.acct.linkError, 'You are not connected; try again in a moment.');
    }
    this.resetLinkPending = true;
    showFormError(this.acct.linkError, '');
    this.setResetLinkBusy(true);
  },

  onResetLink(d) {
    const a = this.acct;
    this.resetLinkPending = false;
    this.setResetLinkBusy(false);
    // Closed meanwhile: the link is shown nowhere and expires unused.
    if (!a.linkDialog.open || d.username.toLowerCase() !== this.resetLinkFor.toLowerCase()) return;
    a.linkURL.value = d.url;
    a.linkExpiry.textContent = `It works once, until ${formatFull(new Date(d.expiresAt))}.`;
    a.linkResult.hidden = false;
    a.linkCreate.hidden = true;
    a.linkCancel.textContent = 'Done';
    a.linkCopy.focus();
  },

  async copyResetLink() {
    const { linkURL, linkCopied } = this.acct;
    try {
      await navigator.clipboard.writeText(linkURL.value);
      linkCopied.textContent = 'Copied to the clipboard.';
    } catch {
      // No clipboard here (a page served over plain http has none, and
      // the browser may refuse): select the link for the user to copy.
      linkURL.focus();
      linkURL.select();
      linkCopied.textContent = 'The link is selected: press Ctrl+C (⌘C on a Mac) to copy it.';
    }
  },

  // --- answers and lost connections ---

  // onAccountError handles an error frame for one of the account frames;
  // it returns false for any other.
  onAccountError(d) {
    const a = this.acct;
    switch (d.type) {
      case 'changePassword':
        this.passwordPending = false;
        this.passwordFailed(errorText(d), d.code === 'invalid_password' ? a.passwordNew : a.passwordCurrent);
        return true;
      case 'resetPassword':
        this.authing = null;
        this.resetRequest = null;
        if (d.code === 'auth_failed') {
          // The link is spent: asking for a password again would not help.
          a.resetFields.hidden = true;
          a.resetSubmit.hidden = true;
          this.resetFailed(d.message, a.resetBack);
        } else {
          this.resetFailed(errorText(d), a.resetNew);
        }
        return true;
      case 'resetLink':
        this.resetLinkPending = false;
        this.setResetLinkBusy(false);
        if (a.linkDialog.open) showFormError(a.linkError, errorText(d));
        else this.shell.toast(errorText(d), 'error');
        return true;
      default:
        return false;
    }
  },

  // accountRequestsLost: the socket closed with account requests
  // unanswered.
  accountRequestsLost() {
    if (this.passwordPending) {
      this.passwordPending = false;
      this.passwordFailed('The connection was lost before the server answered. If you are asked to sign in again, try the new password.');
    }
    if (this.resetRequest?.sent) {
      this.resetRequest = null;
      this.resetFailed('The connection was lost before the server answered. Try again; if the link no longer works, your new password may already be set: go back and sign in with it.');
    }
    if (this.resetLinkPending) {
      this.resetLinkPending = false;
      this.setResetLinkBusy(false);
      showFormError(this.acct.linkError, 'The connection was lost; try again.');
    }
  },
};
