// Rooms and people: joining, leaving, the list of all rooms, members
// coming and going, presence. Methods of App (app.js).

import { roomKey } from './conversation.js';
import { renderAllRooms } from './sidebar.js';

// Room names follow the server's rule (PROTOCOL.md, "Names").
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export const roomMethods = {
  // onLeft: the user is no longer in a room: they left (here or on
  // another device), or a moderator removed them (removedFrom says why).
  onLeft(d) {
    const key = roomKey(d.roomId);
    const why = this.removedFrom(d.roomId);
    if (!this.convs.has(key)) return;
    const conv = this.convs.get(key);
    this.leaveConversation(conv);
    this.dispatch('left', d);
    if (this.roomDialogKey === key && this.mod.room.open) this.mod.room.close();
    if (why) this.shell.toast(why, 'error');
    else this.shell.toast(`You left #${d.roomId}.`);
    if (this.current === key) this.open(this.sidebarOrder()[0]?.key || null, { focus: false });
    else this.renderAll();
  },

  onUserJoined(d) {
    const conv = this.convs.get(this.dispatch('userJoined', d).key);
    if (!conv) return;
    if (d.invitedBy?.userId === this.me.userId) this.roomAnswered('invite', d.roomId, d.username);
    if (conv.key === this.current) {
      this.timeline.update();
      this.renderAll();
    }
  },

  onUserLeft(d) {
    const conv = this.convs.get(this.dispatch('userLeft', d).key);
    if (!conv) return;
    this.clearTyping(conv, d.userId);
    if (conv.key === this.current) {
      this.timeline.update();
      this.renderAll();
    }
  },

  onUserOnline(d) {
    this.dispatch('userOnline', d);
    this.renderAll();
  },

  onUserOffline(d) {
    for (const conv of this.convs.values()) this.clearTyping(conv, d.userId);
    this.dispatch('userOffline', d);
    this.renderAll();
  },

  onRooms(d) {
    const { allRooms, allRoomsEmpty } = this.els;
    renderAllRooms(allRooms, d.rooms, (id) => this.convs.has(roomKey(id)), (id) => this.joinByName(id));
    allRoomsEmpty.hidden = d.rooms.length > 0;
    allRoomsEmpty.textContent = 'No rooms yet. Name one above to create it.';
  },

  openRoomsDialog() {
    const { joinName, allRooms, joinPrivate, joinTopic, joinOptions } = this.els;
    this.showJoinError('');
    joinName.value = '';
    joinPrivate.checked = false;
    joinTopic.value = '';
    joinOptions.open = false;
    if (!allRooms.children.length) {
      this.els.allRoomsEmpty.hidden = false;
      this.els.allRoomsEmpty.textContent = this.authed ? 'Loading rooms…' : 'Rooms load once you are connected.';
    }
    this.send('rooms', {});
    this.shell.closeDrawer();
    this.shell.dialog.showModal();
    joinName.focus();
  },

  // joinByName joins (or opens) a room; options apply when it is created:
  // { private, topic }.
  joinByName(name, options = {}) {
    if (!ROOM_NAME.test(name)) {
      this.showJoinError("Room names are 1-64 letters, digits, '_', '-' or '.'.");
      this.els.joinName.focus();
      return;
    }
    const conv = this.convs.get(roomKey(name));
    if (conv) {
      this.shell.dialog.close();
      this.open(conv.key);
      return;
    }
    if (!this.sendJoin(name, true, options)) this.showJoinError('You are not connected; try again in a moment.');
  },

  showJoinError(message) {
    this.els.joinError.textContent = message;
    this.els.joinError.hidden = !message;
  },

  leaveCurrent() {
    const conv = this.currentConv();
    if (!conv?.isRoom) return;
    if (!this.authed || !this.send('leave', { roomId: conv.id })) this.shell.toast('You are not connected; try again in a moment.', 'error');
  },
};
