// node --test webtest/: the client's state (static/js/state.js), frame
// by frame, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  apply, currentConv, initialState, isMuted, mentionsMe, nameOf, outboxItems, sidebarOrder, unreadTotal,
} from '../static/js/state.js';

const ALICE = { userId: '1', username: 'alice' };
const id = (n) => String(n).padStart(12, '0');
const msg = (n, from = { userId: '2', username: 'bob' }, extra = {}) => ({
  id: id(n), seq: n, roomId: 'general', senderId: from.userId, senderName: from.username,
  content: `message ${n}`, timestamp: `2026-11-28T12:${String(n % 60).padStart(2, '0')}:00.000Z`, ...extra,
});
const range = (a, b, extra) => Array.from({ length: b - a + 1 }, (_, i) => msg(a + i, undefined, extra));

// signedIn is the state after authenticated and joined #general with the
// given history page.
function signedIn({ history = [], hasMore = false, trimmed = false, events, users } = {}) {
  const s = initialState();
  apply(s, { type: 'authenticated', data: {
    ...ALICE, token: 't', onlineUsers: [{ userId: '1', username: 'alice' }, { userId: '2', username: 'bob' }],
    rooms: [{ roomId: 'general', memberCount: 2, lastMessageAt: history.length ? history.at(-1).timestamp : '', unread: 0, mentions: 0 }],
    directs: [{ userId: '3', username: 'carol', unread: 2, lastMessageAt: '2026-11-28T11:00:00.000Z' }],
    maxUploadBytes: 1000,
  } });
  apply(s, { type: 'joined', data: {
    roomId: 'general', topic: 'hi', role: 'owner', history, hasMore, trimmed, events,
    users: users || [{ userId: '1', username: 'alice', online: true }, { userId: '2', username: 'bob', online: true }],
  } });
  s.current = 'room:general';
  return s;
}

const room = (s) => s.convs.get('room:general');
const texts = (conv) => conv.messages.map((m) => m.content);

test('authenticated lists rooms and direct conversations, with the server\'s counts', () => {
  const s = signedIn();
  assert.deepEqual(s.me, { ...ALICE, isAdmin: false, guest: false, bot: false });
  assert.deepEqual(sidebarOrder(s).map((c) => c.key), ['room:general', 'dm:3']);
  assert.equal(s.convs.get('dm:3').unread, 2);
  assert.equal(unreadTotal(s), 2);
  assert.equal(s.maxUploadBytes, 1000);
  assert.equal(currentConv(s).topic, 'hi');
  assert.equal(room(s).role, 'owner');

  // A later sign-in without #general: the room goes.
  apply(s, { type: 'authenticated', data: { ...ALICE, onlineUsers: [], rooms: [], directs: [] } });
  assert.equal(s.convs.has('room:general'), false);
  assert.equal(s.current, null);
});

test('a joined page, then older pages: one run of messages, hasMore, trimmed', () => {
  const s = signedIn({ history: range(81, 130), hasMore: true });
  assert.equal(room(s).messages.length, 50);
  assert.equal(room(s).hasMore, true);
  apply(s, { type: 'history', mode: 'older', data: { roomId: 'general', messages: range(31, 80), hasMore: false, trimmed: true } });
  assert.equal(room(s).messages.length, 100);
  assert.equal(room(s).oldestId(), id(31));
  assert.equal(room(s).hasMore, false);
  assert.equal(room(s).trimmed, true, 'the start is not the beginning: 1..30 are gone');
  // The same page again adds nothing.
  apply(s, { type: 'history', mode: 'older', data: { roomId: 'general', messages: range(31, 80), hasMore: false } });
  assert.equal(room(s).messages.length, 100);
});

test('an untrimmed start is the beginning', () => {
  const s = signedIn({ history: range(1, 3), hasMore: false, trimmed: false });
  assert.equal(room(s).trimmed, false);
  assert.equal(room(s).hasMore, false);
});

test('after a reconnect, a newest page that leaves a gap drops what is older', () => {
  const s = signedIn({ history: range(1, 10) });
  apply(s, { type: 'local/disconnected' });
  assert.equal(room(s).resumeFrom, id(10));
  apply(s, { type: 'history', mode: 'newest', data: { roomId: 'general', messages: range(61, 110), hasMore: true } });
  assert.equal(room(s).oldestId(), id(61), 'no silent gap between 10 and 61');
  assert.equal(room(s).hasMore, true);
});

test('live messages count as unread unless seen; mentions count too', () => {
  const s = signedIn({ history: range(1, 2) });
  apply(s, { type: 'message', seen: false, data: msg(3) });
  apply(s, { type: 'message', seen: false, data: msg(4, undefined, { content: '@alice look', mentions: ['1'] }) });
  assert.equal(room(s).unread, 2);
  assert.equal(room(s).mentions, 1);
  assert.deepEqual(s.changed.added.map((m) => m.id), [id(4)]);
  apply(s, { type: 'message', seen: true, data: msg(5) });
  assert.equal(room(s).unread, 2);
  // Sending reads the room up to one's own message.
  apply(s, { type: 'message', data: msg(6, ALICE) });
  assert.equal(room(s).unread, 0);
  assert.equal(room(s).lastRead, id(6));
  // Messages arrive once, whatever brings them.
  apply(s, { type: 'message', data: msg(6, ALICE) });
  assert.deepEqual(texts(room(s)), ['message 1', 'message 2', 'message 3', '@alice look', 'message 5', 'message 6']);
});

test('the outbox: queued, sent, acknowledged by clientMsgId exactly once', () => {
  const s = signedIn({ history: range(1, 2) });
  apply(s, { type: 'local/send', data: { key: 'room:general', pending: { clientMsgId: 'c1', content: 'one', timestamp: 't' } } });
  apply(s, { type: 'local/send', data: { key: 'room:general', pending: { clientMsgId: 'c2', content: 'two', timestamp: 't' } } });
  assert.deepEqual(room(s).pending.map((p) => p.status), ['queued', 'queued']);
  apply(s, { type: 'local/sending', data: { clientMsgId: 'c1' } });
  assert.equal(room(s).findPending('c1').status, 'sending');
  // The connection drops before c1's acknowledgement: it waits again.
  apply(s, { type: 'local/disconnected' });
  assert.deepEqual(room(s).pending.map((p) => p.status), ['queued', 'queued']);
  assert.equal(room(s).synced, false);
  assert.deepEqual(outboxItems(s).map((it) => [it.clientMsgId, it.status, it.kind, it.id]),
    [['c1', 'queued', 'room', 'general'], ['c2', 'queued', 'room', 'general']]);
  // The newest page after reconnecting has c1 (it was stored): c1 leaves
  // the outbox without being sent again; c2 still waits.
  apply(s, { type: 'history', mode: 'newest', data: { roomId: 'general', hasMore: false,
    messages: [...range(1, 2), msg(3, ALICE, { content: 'one', clientMsgId: 'c1' })] } });
  assert.equal(s.changed.took, true);
  assert.deepEqual(room(s).pending.map((p) => p.clientMsgId), ['c2']);
  // c2 goes out, and its acknowledgement takes it.
  apply(s, { type: 'local/sending', data: { clientMsgId: 'c2' } });
  apply(s, { type: 'message', data: msg(4, ALICE, { content: 'two', clientMsgId: 'c2' }) });
  assert.equal(s.changed.ownSend, true);
  assert.deepEqual(room(s).pending, []);
  assert.deepEqual(texts(room(s)), ['message 1', 'message 2', 'one', 'two']);
});

test('a refused message fails; the outbox comes back after a reload', () => {
  const s = signedIn();
  apply(s, { type: 'local/send', data: { key: 'room:general', pending: { clientMsgId: 'c9', content: 'no', timestamp: 't' } } });
  apply(s, { type: 'error', data: { type: 'chat', code: 'muted', message: 'You are muted', clientMsgId: 'c9' } });
  assert.equal(room(s).findPending('c9').status, 'failed');
  assert.equal(room(s).findPending('c9').error, 'You are muted');
  const items = outboxItems(s);

  const again = signedIn();
  apply(again, { type: 'local/outbox', data: { items: [...items, { kind: 'dm', id: '3', name: 'carol', clientMsgId: 'd1', content: 'hi carol' }] } });
  assert.equal(room(again).findPending('c9').status, 'failed');
  assert.equal(again.convs.get('dm:3').findPending('d1').status, 'queued');
  apply(again, { type: 'local/discard', data: { clientMsgId: 'c9' } });
  assert.deepEqual(room(again).pending, []);
});

test('edits, deletions and reactions reach every copy, and quotes of it', () => {
  const s = signedIn({ history: [msg(1), msg(2, ALICE, { replyTo: { id: id(1), senderName: 'bob', content: 'message 1' } })] });
  apply(s, { type: 'messageEdited', data: { roomId: 'general', id: id(1), content: 'edited', editedAt: 'x' } });
  assert.equal(room(s).byId.get(id(1)).content, 'edited');
  assert.equal(room(s).byId.get(id(2)).replyTo.content, 'edited');
  apply(s, { type: 'reaction', data: { roomId: 'general', id: id(1), emoji: '🎉', count: 1, userIds: ['1'], userId: '1', username: 'alice' } });
  assert.deepEqual(room(s).byId.get(id(1)).reactions, [{ emoji: '🎉', count: 1, userIds: ['1'] }]);
  apply(s, { type: 'reaction', data: { roomId: 'general', id: id(1), emoji: '🎉', count: 0, userIds: [] } });
  assert.deepEqual(room(s).byId.get(id(1)).reactions, []);
  apply(s, { type: 'messageDeleted', data: { roomId: 'general', id: id(1) } });
  assert.equal(room(s).byId.get(id(1)).deleted, true);
  assert.equal(room(s).byId.get(id(2)).replyTo.deleted, true);
});

test('a live reply counts on its parent and joins the open thread', () => {
  const s = signedIn({ history: [msg(1)] });
  s.thread = { key: 'room:general', id: id(1), parent: room(s).byId.get(id(1)), replies: [], loading: false };
  apply(s, { type: 'message', data: msg(2, undefined, { replyTo: { id: id(1) } }) });
  assert.equal(room(s).byId.get(id(1)).replyCount, 1);
  assert.deepEqual(s.thread.replies.map((r) => r.id), [id(2)]);
});

test('members: joins and leaves are lines; presence follows', () => {
  const s = signedIn({ history: range(1, 2) });
  apply(s, { type: 'userJoined', now: '2026-11-28T13:00:00.000Z', data: { roomId: 'general', userId: '4', username: 'dave' } });
  assert.equal(room(s).memberCount, 3);
  assert.deepEqual(room(s).events.map((e) => [e.text, e.afterId]), [['dave joined the room', id(2)]]);
  apply(s, { type: 'userOffline', data: { userId: '2', username: 'bob' } });
  assert.equal(room(s).members.get('2').online, false);
  apply(s, { type: 'userLeft', data: { roomId: 'general', userId: '4', username: 'dave' } });
  assert.equal(room(s).memberCount, 2);
  assert.equal(room(s).events.at(-1).text, 'dave left the room');
  assert.equal(nameOf(s, '4', room(s)), 'dave', 'the page still knows the name');
});

test('moderation: mute with its end, kick, a role, the topic', () => {
  const s = signedIn({ history: range(1, 1) });
  const by = { userId: '2', username: 'bob' };
  apply(s, { type: 'muted', data: { roomId: 'general', userId: '1', username: 'alice', by, until: '2026-11-28T14:00:00.000Z', reason: 'calm' } });
  assert.deepEqual(room(s).mute, { until: '2026-11-28T14:00:00.000Z', reason: 'calm', by: 'bob' });
  assert.equal(isMuted(room(s), Date.parse('2026-11-28T13:00:00Z')), true);
  assert.equal(isMuted(room(s), Date.parse('2026-11-28T15:00:00Z')), false);
  apply(s, { type: 'unmuted', data: { roomId: 'general', userId: '1', username: 'alice', by } });
  assert.equal(room(s).mute, null);
  apply(s, { type: 'roomUpdated', data: { roomId: 'general', topic: 'new', by } });
  assert.equal(room(s).topic, 'new');
  apply(s, { type: 'roleChanged', data: { roomId: 'general', userId: '2', username: 'bob', role: 'moderator', by: ALICE } });
  assert.equal(room(s).members.get('2').role, 'moderator');
  apply(s, { type: 'kicked', data: { roomId: 'general', userId: '2', username: 'bob', by: ALICE, reason: 'bye' } });
  assert.equal(room(s).members.has('2'), false);
  const lines = room(s).events.map((e) => e.text);
  assert.ok(lines[0].startsWith('bob muted you until') && lines[0].endsWith(': “calm”'), lines[0]);
  assert.deepEqual(lines.slice(1), ['bob unmuted you', 'bob set the topic: new', 'You made bob a moderator', 'You removed bob from the room: “bye”']);
  assert.equal(room(s).events.at(-1).warn, true);
});

test('joined with the mute from the member list', () => {
  const s = signedIn({ users: [{ userId: '1', username: 'alice', muted: true, mutedUntil: '2030-01-01T00:00:00.000Z' }] });
  assert.equal(room(s).mute.until, '2030-01-01T00:00:00.000Z');
});

test('events in joined and history become lines in their place, once', () => {
  const events = [
    { type: 'joined', at: '2026-11-28T11:00:00.000Z', after: '', userId: '4', username: 'dave' },
    { type: 'topic', at: '2026-11-28T11:30:00.000Z', after: id(11), userId: '2', username: 'bob', by: { userId: '2', username: 'bob' }, topic: 'plans' },
    { type: 'kicked', at: '2026-11-28T11:40:00.000Z', after: id(12), userId: '4', username: 'dave', by: { userId: '2', username: 'bob' }, reason: 'spam' },
  ];
  const s = signedIn({ history: range(11, 13), events });
  assert.deepEqual(room(s).events.map((e) => [e.text, e.afterId]), [
    ['dave joined the room', id(10)], ['bob set the topic: plans', id(11)], ['bob removed dave from the room: “spam”', id(12)],
  ]);
  assert.equal(room(s).events[2].warn, true);
  // The same events in another page are not added twice; an absent
  // events field adds none.
  apply(s, { type: 'history', mode: 'newest', data: { roomId: 'general', messages: range(11, 13), hasMore: false, events } });
  apply(s, { type: 'history', mode: 'newest', data: { roomId: 'general', messages: range(11, 13), hasMore: false } });
  assert.equal(room(s).events.length, 3);
});

test('a line seen live is replaced by the server\'s copy of the same event', () => {
  const s = signedIn({ history: range(1, 2) });
  apply(s, { type: 'userJoined', data: { roomId: 'general', userId: '4', username: 'dave' } });
  assert.equal(room(s).events[0].live, true);
  apply(s, { type: 'history', mode: 'newest', data: { roomId: 'general', messages: range(1, 2), hasMore: false,
    events: [{ type: 'joined', at: '2026-11-28T12:10:00.000Z', after: id(2), userId: '4', username: 'dave' }] } });
  assert.deepEqual(room(s).events.map((e) => [e.text, e.live]), [['dave joined the room', false]]);
});

test('invited adds the room; left removes it', () => {
  const s = signedIn();
  apply(s, { type: 'invited', data: { room: { roomId: 'secret', private: true, memberCount: 2, topic: 't' }, by: { userId: '2', username: 'bob' } } });
  const secret = s.convs.get('room:secret');
  assert.equal(secret.private, true);
  assert.equal(secret.events[0].text, 'bob added you to the room');
  apply(s, { type: 'left', data: { roomId: 'secret' } });
  assert.equal(s.convs.has('room:secret'), false);
});

test('readUpdated from another device lowers the counts exactly', () => {
  const s = signedIn({ history: range(1, 2) });
  for (const n of [3, 4, 5]) apply(s, { type: 'message', data: msg(n) });
  assert.equal(room(s).unread, 3);
  apply(s, { type: 'readUpdated', data: { roomId: 'general', messageId: id(4) } });
  assert.equal(room(s).unread, 1);
  assert.equal(room(s).lastRead, id(4));
});

test('direct messages: both directions land in one conversation', () => {
  const s = signedIn();
  apply(s, { type: 'privateMessage', data: { id: id(1), senderId: '3', senderName: 'carol', targetUserId: '1', content: 'hi @alice', timestamp: 't' } });
  apply(s, { type: 'privateMessageSent', data: { id: id(2), senderId: '1', senderName: 'alice', targetUserId: '3', targetUsername: 'carol', content: 'hi', timestamp: 't' } });
  const dm = s.convs.get('dm:3');
  assert.deepEqual(dm.messages.map((m) => m.id), [id(1), id(2)]);
  assert.equal(mentionsMe(s, dm.messages[0]), true, 'a direct message names alice in its text');
});

test('groups are named by their people; guests and bots are marked; notify levels follow the server', () => {
  const s = signedIn();
  apply(s, { type: 'invited', data: {
    room: { roomId: 'g-0123456789abcdef', memberCount: 3, onlineCount: 1, private: true, group: true, topic: 'alice, bob, carol' },
    by: { userId: '2', username: 'bob' },
  } });
  const g = s.convs.get('room:g-0123456789abcdef');
  assert.equal(g.group, true);
  assert.equal(g.title, 'alice, bob, carol');
  assert.equal(room(s).title, '#general');
  apply(s, { type: 'userJoined', data: { roomId: 'general', userId: '9', username: 'visitor', guest: true } });
  apply(s, { type: 'userJoined', data: { roomId: 'general', userId: '10', username: 'ci', bot: true } });
  assert.equal(room(s).members.get('9').guest, true);
  assert.equal(room(s).members.get('10').bot, true);
  assert.equal(room(s).notify, 'mentions');
  apply(s, { type: 'notifyUpdated', data: { roomId: 'general', level: 'all' } });
  assert.equal(room(s).notify, 'all');
});
