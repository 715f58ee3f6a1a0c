package main

// Where reports whether a user has a connection on this server, and
// whether another node of a cluster says it has one.
func (h *Hub) Where(userID uint64) (here, elsewhere bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.users[userID] != nil, h.remote[userID] != nil
}
