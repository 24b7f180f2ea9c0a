#!/bin/sh
# cordon-collector, before install: the cordon user the service runs as.
set -e

if ! getent group cordon >/dev/null 2>&1; then
	groupadd --system cordon
fi
if ! getent passwd cordon >/dev/null 2>&1; then
	useradd --system --gid cordon --home-dir /var/lib/cordon --no-create-home \
		--shell /usr/sbin/nologin --comment "Cordon collector" cordon
fi
exit 0
