#!/bin/sh
# After the files are unpacked: the data directory, and systemd told about
# the units. The service is not started: the first account to sign up on a
# server with open registration becomes its admin, so create yours first
# (README, "Install the .deb").
set -e
install -d -o parley -g parley -m 0750 /var/lib/parley
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# An upgrade restarts a service that was running.
	if [ "$1" = "configure" ] && [ -n "$2" ] && systemctl is-active --quiet parley; then
		systemctl restart parley || true
	fi
fi
if [ "$1" = "configure" ] && [ -z "$2" ]; then
	cat <<'MSG'
parley is installed but not started. Next:
  1. edit /etc/parley/config.yaml (address, public_url, HTTPS)
  2. sudo -u parley parley user add YOURNAME   # the first account is the admin
  3. systemctl enable --now parley parley-backup.timer
MSG
fi
