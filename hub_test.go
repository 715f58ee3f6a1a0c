package main

// broadcast and sendUser write a frame as fan-out does, for tests that
// drive the hub directly.
func (h *Hub) broadcast(room string, frame []byte) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.broadcastLocked(room, frame, 0)
}

func (h *Hub) sendUser(userID uint64, frame []byte) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sendUserLocked(userID, frame)
}

// presencePending is how many users' presence announcements wait for
// their allowance.
func (h *Hub) presencePending() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.deferred)
}
