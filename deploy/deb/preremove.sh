#!/bin/sh
# Before removal (not before an upgrade): stop the service and its backups.
set -e
if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
	systemctl disable --now parley-backup.timer parley >/dev/null 2>&1 || true
fi
