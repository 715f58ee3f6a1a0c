// Composer: Enter sends, Shift+Enter breaks the line, the field grows with
// its text, and typing is reported at most every TYPING_EVERY_MS, with a
// stop after TYPING_IDLE_MS without a keystroke.

const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const MAX_HEIGHT_PX = 200;

export class Composer {
  // callbacks: onSend(text) returns whether it was taken;
  // onTyping(isTyping) reports the user's typing state; optional:
  // onKeyDown(e) sees keys first and returns true when it handled one;
  // canSendEmpty() allows a message without text (files attached);
  // onFiles(files) takes files pasted into the field.
  constructor(form, input, callbacks) {
    this.form = form;
    this.input = input;
    this.cb = callbacks;
    this.typing = false;
    this.sentAt = 0;
    this.idleTimer = 0;
    this.drafts = new Map();
    this.key = null;

    input.addEventListener('keydown', (e) => {
      if (this.cb.onKeyDown?.(e)) return;
      if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    input.addEventListener('input', () => {
      this.autosize();
      this.onInput();
      this.keepDraft();
    });
    input.addEventListener('paste', (e) => {
      const files = [...(e.clipboardData?.files || [])];
      if (!files.length || !this.cb.onFiles) return;
      e.preventDefault();
      this.cb.onFiles(files);
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
      input.focus();
    });
  }

  submit() {
    // Keep the author's indentation, but not blank lines around the text.
    const text = this.input.value.replace(/^\s*\n/, '').trimEnd();
    if (this.input.disabled || (!text.trim() && !this.cb.canSendEmpty?.())) return;
    if (!this.cb.onSend(text)) return;
    this.input.value = '';
    this.drafts.delete(this.key);
    this.cb.onDrafts?.(this.drafts);
    this.autosize();
    this.stopTyping();
  }

  // keepDraft records the field's text as the open conversation's draft.
  keepDraft() {
    if (!this.key) return;
    if (this.input.value) this.drafts.set(this.key, this.input.value);
    else this.drafts.delete(this.key);
    this.cb.onDrafts?.(this.drafts);
  }

  // setDrafts takes drafts kept from an earlier visit (key -> text); the
  // open conversation's replaces an empty field.
  setDrafts(obj) {
    for (const [k, v] of Object.entries(obj)) if (typeof v === 'string' && v && !this.drafts.has(k)) this.drafts.set(k, v);
    if (this.key && !this.input.value && this.drafts.has(this.key)) {
      this.input.value = this.drafts.get(this.key);
      this.autosize();
    }
  }

  onInput() {
    if (!this.input.value.trim()) {
      this.stopTyping();
      return;
    }
    const now = Date.now();
    if (!this.typing || now - this.sentAt >= TYPING_EVERY_MS) {
      this.typing = true;
      this.sentAt = now;
      this.cb.onTyping(true);
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.idleTimer);
    if (!this.typing) return;
    this.typing = false;
    this.sentAt = 0;
    this.cb.onTyping(false);
  }

  // forgetTyping drops the typing state without reporting it, after the
  // connection that carried it is gone.
  forgetTyping() {
    clearTimeout(this.idleTimer);
    this.typing = false;
    this.sentAt = 0;
  }

  // switchTo keeps each conversation's unsent draft.
  switchTo(key, placeholder) {
    this.stopTyping();
    if (this.key) {
      if (this.input.value) this.drafts.set(this.key, this.input.value);
      else this.drafts.delete(this.key);
    }
    this.key = key;
    this.input.value = this.drafts.get(key) || '';
    this.input.placeholder = placeholder;
    this.autosize();
  }

  // reset forgets drafts and typing, when the user signs out.
  reset() {
    this.forgetTyping();
    this.drafts.clear();
    this.key = null;
    this.input.value = '';
    this.autosize();
  }

  // setDisabled turns the field off (muted) with a placeholder saying why,
  // or back on with placeholder.
  setDisabled(disabled, placeholder) {
    if (disabled) this.stopTyping();
    this.input.disabled = disabled;
    this.input.placeholder = placeholder;
    this.form.classList.toggle('is-disabled', disabled);
  }

  focus() {
    this.input.focus({ preventScroll: true });
  }

  // autosize fits the field to its text. The form keeps its height while
  // the field is measured: were it to shrink for a moment, the timeline
  // above would grow, and the browser would move a reader at its bottom.
  autosize() {
    this.form.style.minHeight = `${this.form.offsetHeight}px`;
    this.input.style.height = 'auto';
    this.input.style.height = Math.min(this.input.scrollHeight, MAX_HEIGHT_PX) + 'px';
    this.form.style.minHeight = '';
  }
}
