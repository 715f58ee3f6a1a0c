#!/bin/sh
# Before the files are unpacked: the service's own system user and group.
set -e
if ! getent group parley >/dev/null; then
	groupadd --system parley
fi
if ! getent passwd parley >/dev/null; then
	useradd --system --gid parley --home-dir /var/lib/parley --no-create-home \
		--shell /usr/sbin/nologin --comment "parley chat server" parley
fi
