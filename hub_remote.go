package main

import "slices"

// Presence across the nodes of a cluster. Each node tells the others who
// came online or went offline on it (presenceRelay); what they tell it
// lands here, in h.remote. A user is online while any node has them, so
// this node announces them online when the first node has them and
// offline when the last lets go, to its own connections, with the same
// audience rules as for its own users. Which rooms a remote user is in
// starts with what their node said and then follows the events this node
// applies like every other.

// presenceRelay tells the other nodes of a cluster about this node's users.
type presenceRelay interface {
	// Set says a user came online here (first connection) or went
	// offline here (last connection).
	Set(userID uint64, name string, rooms []string, peers []uint64, online bool)
	// Typing relays a typing notice of a room.
	Typing(room string, userID uint64, frame []byte)
}

// SetRelay connects the hub to the other nodes; call it before serving.
func (h *Hub) SetRelay(r presenceRelay) { h.relay = r }

// onlineCountAllLocked is how many users are online here or elsewhere.
func (h *Hub) onlineCountAllLocked() int {
	n := len(h.users)
	for id := range h.remote {
		if h.users[id] == nil {
			n++
		}
	}
	return n
}

// presenceLocked finds a user online here or elsewhere.
func (h *Hub) presenceLocked(id uint64) *presence {
	if p := h.users[id]; p != nil {
		return p
	}
	return h.remote[id]
}

// RemoteOnline records that node has a user, with their rooms and direct
// conversations; if nobody had them, this node's connections hear them
// come online.
func (h *Hub) RemoteOnline(node string, id uint64, name string, rooms []string, peers []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.remote[id]
	wasOnline := r != nil || h.users[id] != nil
	if r == nil {
		r = &presence{id: id, name: name, rooms: map[string]struct{}{}, peers: map[uint64]struct{}{}, nodes: map[string]struct{}{}}
		h.remote[id] = r
	}
	r.nodes[node] = struct{}{}
	for room := range r.rooms {
		h.unindexRemoteLocked(room, id)
	}
	clear(r.rooms)
	for _, room := range rooms {
		r.rooms[room] = struct{}{}
		h.indexRemoteLocked(room, id)
	}
	for _, p := range peers {
		r.peers[p] = struct{}{}
	}
	if !wasOnline {
		h.announceLocked(r, true)
	}
}

// RemoteOffline records that node no longer has a user; if nobody has
// them now, this node's connections hear them go offline.
func (h *Hub) RemoteOffline(node string, id uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.remote[id]
	if r == nil {
		return
	}
	delete(r.nodes, node)
	if len(r.nodes) > 0 {
		return
	}
	delete(h.remote, id)
	for room := range r.rooms {
		h.unindexRemoteLocked(room, id)
	}
	if h.users[id] == nil {
		h.announceLocked(r, false)
	}
}

// RemoteTyping relays another node's typing notice to this node's
// connections in the room.
func (h *Hub) RemoteTyping(room string, userID uint64, frame []byte) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.broadcastLocked(room, frame, userID)
}

// remoteJoinedLocked and remoteLeftLocked follow a remote user's
// memberships as events change them.
func (h *Hub) remoteJoinedLocked(id uint64, room string) {
	if r := h.remote[id]; r != nil {
		r.rooms[room] = struct{}{}
		h.indexRemoteLocked(room, id)
	}
}

func (h *Hub) remoteLeftLocked(id uint64, room string) {
	if r := h.remote[id]; r != nil {
		delete(r.rooms, room)
		h.unindexRemoteLocked(room, id)
	}
}

func (h *Hub) indexRemoteLocked(room string, id uint64) {
	set := h.remoteRooms[room]
	if set == nil {
		set = map[uint64]struct{}{}
		h.remoteRooms[room] = set
	}
	set[id] = struct{}{}
}

func (h *Hub) unindexRemoteLocked(room string, id uint64) {
	if set := h.remoteRooms[room]; set != nil {
		delete(set, id)
		if len(set) == 0 {
			delete(h.remoteRooms, room)
		}
	}
}

// keys lists a set's members, sorted.
func keys[K interface{ ~string | ~uint64 }](m map[K]struct{}) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
