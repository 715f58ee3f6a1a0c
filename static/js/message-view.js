// One message as the page shows it, in the timeline and in the thread
// panel: sender and time, the quoted message it replies to, its text (or
// that it was deleted), "(edited)", files, reactions, its replies, and
// for the user's own messages not yet acknowledged, their state. Text goes
// in through Text nodes only (format.js richText).

import { h, svgIcon } from './dom.js';
import { avatar, formatFull, formatTime, plural, richText, snippet } from './format.js';
import { reactionsBar } from './reactions.js';
import { setTabbable } from './message-tools.js';
import { filesView, pendingFilesView } from './uploads.js';

const THREAD_ICON = 'M21 15a2 2 0 01-2 2H7l-4 4V5a2 2 0 012-2h14a2 2 0 012 2z';

// messageSig summarises everything a message row shows, so a row is
// rebuilt exactly when something in it changed.
export function messageSig(m, opts, me) {
  const reactions = (m.reactions || []).map((r) => `${r.emoji}${r.count}${r.userIds.includes(me.userId) ? '*' : ''}`).join(',');
  return [
    opts.continued ? 1 : 0, opts.mention ? 1 : 0, opts.editing ? 'E' : '', m.status || '', m.error || '',
    m.deleted ? 'D' : '', m.editedAt || '', m.editPending ? 'P' : '', m.replyCount || 0, m.replyTo ? `${m.replyTo.id}${m.replyTo.deleted ? 'D' : ''}${m.replyTo.content}` : '',
    reactions, (m.files || []).map((f) => f.id || f.name).join(','), m.content,
  ].join('|');
}

// messageRow builds a message's <li>. opts: continued (same sender as the
// row above), mention (mentions the user), pending, date, editing.
// ctx: me, showReplies, hideQuote (the id of a parent not to quote), nameOf(id), onQuote(m), onThread(m),
// onToggleReaction(m, emoji), onAddReaction(m, button), onRetry(id),
// onDiscard(id), editor(m) (the inline editor, while editing).
export function messageRow(m, opts, ctx) {
  const { continued, mention, pending, date } = opts;
  const classes = ['msg'];
  if (continued) classes.push('msg-continued');
  if (m.senderId === ctx.me.userId) classes.push('msg-own');
  if (mention) classes.push('msg-mention');
  if (pending) classes.push(m.status === 'failed' ? 'msg-failed' : m.status === 'queued' ? 'msg-pending msg-queued' : 'msg-pending');
  const time = h('time', { class: 'msg-time', datetime: m.timestamp, title: formatFull(date), text: formatTime(date) });
  const gutter = continued
    ? h('div', { class: 'msg-gutter' }, h('time', { class: 'msg-hover-time', datetime: m.timestamp, 'aria-hidden': 'true', text: formatTime(date) }))
    : h('div', { class: 'msg-gutter' }, avatar(m.senderName));
  const meta = h('div', { class: continued ? 'msg-meta visually-hidden' : 'msg-meta' },
    h('span', { class: 'msg-sender', text: m.senderName }), ' ');
  // A webhook's name for itself (Slack's username) is a label beside the
  // bot's: it never replaces the name a message was really sent by.
  if (m.bot) meta.append(h('span', { class: 'member-tag msg-bot', text: m.botLabel ? `bot · ${m.botLabel}` : 'bot' }), ' ');
  meta.append(time);
  const body = h('div', { class: 'msg-main' }, meta);

  if (m.replyTo && !m.deleted && m.replyTo.id !== ctx.hideQuote) body.append(quoteView(m, ctx));
  if (opts.editing) {
    body.append(ctx.editor(m));
  } else if (m.deleted) {
    body.append(h('div', { class: 'msg-content' }, h('div', { class: 'msg-text msg-deleted', text: 'This message was deleted.' })));
  } else {
    const content = h('div', { class: 'msg-content' }, h('div', { class: 'msg-text' }, richText(m.content, ctx.me.username)));
    if (m.editedAt) {
      const when = new Date(m.editedAt);
      content.append(h('span', {
        class: 'msg-edited', title: m.editPending ? 'Saving…' : `Edited ${formatFull(when)}`,
        'aria-label': m.editPending ? '(saving the edit)' : `(edited ${formatFull(when)})`, text: '(edited)',
      }));
    }
    body.append(content);
  }
  if (!m.deleted && m.files?.length) {
    const files = pending ? pendingFilesView(m.files) : filesView(m.files);
    if (files) body.append(files);
  }
  if (!pending && !m.deleted && m.reactions?.length) {
    body.append(reactionsBar(m.reactions, {
      me: ctx.me, nameOf: ctx.nameOf,
      onToggle: (emoji) => ctx.onToggleReaction(m, emoji),
      onAdd: (button) => ctx.onAddReaction(m, button),
    }));
  }
  if (!pending && ctx.showReplies && m.replyCount > 0) {
    body.append(h('button', {
      type: 'button', class: 'msg-replies', dataset: { fk: 'replies' }, onclick: () => ctx.onThread(m),
      'aria-label': `${plural(m.replyCount, 'reply', 'replies')}: open the thread`,
    }, svgIcon(THREAD_ICON), plural(m.replyCount, 'reply', 'replies')));
  }
  if (pending && m.status === 'sending') {
    body.append(h('div', { class: 'msg-state', text: 'Sending…' }));
  } else if (pending && m.status === 'queued') {
    body.append(h('div', { class: 'msg-state' },
      h('span', { text: 'Waiting for the connection; it goes out when you are back.' }), ' ',
      h('button', { type: 'button', class: 'link-btn msg-discard', onclick: () => ctx.onDiscard(m.clientMsgId), text: 'Discard' })));
  } else if (pending) {
    body.append(h('div', { class: 'msg-state msg-error', role: 'alert' },
      h('span', { text: `Not sent: ${m.error || 'no answer from the server'}.` }), ' ',
      h('button', { type: 'button', class: 'link-btn msg-retry', onclick: () => ctx.onRetry(m.clientMsgId), text: 'Retry' }), ' ',
      h('button', { type: 'button', class: 'link-btn msg-discard', onclick: () => ctx.onDiscard(m.clientMsgId), text: 'Discard' })));
  }
  const attrs = { class: classes.join(' ') };
  if (!pending) {
    attrs['data-id'] = m.id;
    attrs.tabindex = '-1';
  }
  const li = h('li', attrs, gutter, body);
  // Out of the tab order until the message is the active one
  // (message-tools.js); an own message waiting to go keeps its buttons.
  if (!pending) setTabbable(li, false);
  return li;
}

// quoteView is the quoted parent of a reply; it takes the reader there.
function quoteView(m, ctx) {
  const q = m.replyTo;
  if (q.deleted) {
    return h('div', { class: 'msg-quote msg-quote-gone' }, h('span', { class: 'msg-quote-text', text: 'The original message was deleted.' }));
  }
  const text = q.content ? snippet(q.content, 200) : 'a file';
  return h('button', {
    type: 'button', class: 'msg-quote', dataset: { fk: 'quote', quote: q.id }, onclick: () => ctx.onQuote(m),
    'aria-label': `In reply to ${q.senderName}: ${text}. Show that message.`, title: 'Show the message this replies to',
  }, h('span', { class: 'msg-quote-name', text: q.senderName }), h('span', { class: 'msg-quote-text', text }));
}

// editorView is the inline editor of a message. draft: the text;
// onInput(text), onSave(text), onCancel().
export function editorView(draft, { onInput, onSave, onCancel }) {
  const input = h('textarea', { class: 'msg-edit-input', rows: '1', 'aria-label': 'Edit the message', dataset: { fk: 'editor' } });
  input.value = draft;
  const size = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 240)}px`;
  };
  input.addEventListener('input', () => {
    onInput(input.value);
    size();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
      e.preventDefault();
      onSave(input.value);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      onCancel();
    }
  });
  requestAnimationFrame(size);
  return h('div', { class: 'msg-editor' }, input,
    h('p', { class: 'msg-edit-hint' }, 'Escape to ',
      h('button', { type: 'button', class: 'link-btn', onclick: onCancel, text: 'cancel' }), ' · Enter to ',
      h('button', { type: 'button', class: 'link-btn msg-edit-save', onclick: () => onSave(input.value), text: 'save' })));
}
