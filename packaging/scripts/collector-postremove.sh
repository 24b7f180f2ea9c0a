#!/bin/sh
# cordon-collector, after removal. Purging (deb: purge) deletes the data
# folder (the CA, every agent's enrollment, findings and incidents) and
# the logs; the cordon user is kept, as files may still belong to it.
set -e

case "$1" in
purge)
	rm -rf /var/lib/cordon /var/lib/private/cordon /var/log/cordon
	rm -f /etc/default/cordon-collector
	rmdir /etc/cordon 2>/dev/null || true
	;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
