#!/bin/sh
# After removal. The database in /var/lib/parley and the parley user are
# kept, even on purge: a chat history is not deleted by a package manager.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
