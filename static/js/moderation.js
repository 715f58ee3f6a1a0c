// Roles and moderation rules as the server applies them (PROTOCOL.md,
// "Rooms and roles", "Moderation"): who may do what to whom, and how the
// events read as lines in the timeline. The server checks everything
// again; this only decides what to offer.

import { formatFull, formatTime } from './format.js';

// Ranks: an action on someone needs a higher rank than theirs.
const RANK = { member: 0, moderator: 1, owner: 2, admin: 3 };

export function myRank(conv, me) {
  if (me?.isAdmin) return RANK.admin;
  return RANK[conv?.role] ?? RANK.member;
}

// canModerate: kick, ban, mute, unban, set the topic, delete others'
// messages.
export const canModerate = (conv, me) => !!conv?.isRoom && myRank(conv, me) >= RANK.moderator;

// canInvite: any member of a public room, moderators of a private one.
export const canInvite = (conv, me) => !!conv?.isRoom && (!conv.private || canModerate(conv, me));

// memberPowers says what the user may do to member in conv.
export function memberPowers(conv, me, member) {
  const none = { any: false };
  if (!conv?.isRoom || !me || member.userId === me.userId) return none;
  const rank = myRank(conv, me);
  const theirs = RANK[member.role] ?? RANK.member;
  if (rank < RANK.moderator || theirs >= rank) return none;
  return {
    any: true,
    setRole: rank >= RANK.owner && member.role !== 'owner',
    globalBan: !!me.isAdmin,
  };
}

// muteUntilText: "until 3:45 PM", "until Tuesday, … at 9:00 AM", or
// "until a moderator unmutes them" (whom: "them" or "you").
export function muteUntilText(until, whom = 'them') {
  if (!until) return `until a moderator unmutes ${whom}`;
  const d = new Date(until);
  const sameDay = d.toDateString() === new Date().toDateString();
  return `until ${sameDay ? formatTime(d) : formatFull(d)}`;
}

// eventText turns a moderation or room event into a line for the
// timeline. me: the user; the text says "you" where it is about them.
export function eventText(type, d, me) {
  const who = d.userId === me.userId ? 'you' : d.username;
  const by = d.by?.userId === me.userId ? 'You' : d.by?.username || 'Someone';
  const why = d.reason ? `: “${d.reason}”` : '';
  switch (type) {
    case 'kicked': return `${by} removed ${who} from the room${why}`;
    case 'banned': return d.global ? `${who} was banned from the server by ${d.by?.username}${why}` : `${by} banned ${who}${why}`;
    case 'unbanned': return `${by} lifted the ban on ${who}`;
    case 'muted': return `${by} muted ${who} ${muteUntilText(d.until, who === 'you' ? 'you' : 'them')}${why}`;
    case 'unmuted': return `${by} unmuted ${who}`;
    case 'roleChanged': return d.role === 'moderator' ? `${by} made ${who} a moderator` : `${by} removed ${who} as a moderator`;
    case 'roomUpdated': return d.topic ? `${by} set the topic: ${d.topic}` : `${by} cleared the topic`;
    case 'invited': return `${by} added ${who} to the room`;
    case 'joined': return who === 'you' ? 'You joined the room' : `${who} joined the room`;
    case 'left': return who === 'you' ? 'You left the room' : `${who} left the room`;
    default: return '';
  }
}

// serverEventText describes an event of a joined or history page
// (PROTOCOL.md, "events"): { text, warn }.
export function serverEventText(ev, me) {
  const type = ev.type === 'topic' ? 'roomUpdated' : ev.type;
  const d = { ...ev, by: ev.by || null };
  if (type === 'joined' && ev.by && ev.by.userId !== ev.userId) return { text: eventText('invited', d, me), warn: false };
  return { text: eventText(type, d, me), warn: type === 'kicked' || type === 'banned' };
}

// removedText explains to the user why a room went away.
export function removedText(type, d, isPrivate) {
  const by = d.by?.username || 'a moderator';
  const why = d.reason ? ` Reason: “${d.reason}”.` : '';
  if (type === 'banned') return `You were banned from #${d.roomId} by ${by}.${why}`;
  return `You were removed from #${d.roomId} by ${by}.${why}${isPrivate ? '' : ' You may join it again.'}`;
}

// mutedText says why the composer is off.
export function mutedText(conv, mute) {
  const by = mute.by ? ` by ${mute.by}` : '';
  const why = mute.reason ? ` Reason: “${mute.reason}”.` : '';
  return `You were muted in ${conv.title}${by}, ${muteUntilText(mute.until, 'you')}.${why}`;
}
