#!/bin/sh
# cordon-agent, after removal. Purging (deb: purge) also deletes the
# agent's state: its enrollment, spool, journal and quarantine vault, and
# lifts a network isolation that the agent would have restored. A plain
# removal, and an rpm erase, keep the state for a later reinstall.
set -e

case "$1" in
purge)
	if command -v nft >/dev/null 2>&1; then
		nft delete table inet cordon 2>/dev/null || true
	fi
	rm -rf /var/lib/cordon-agent
	rm -f /etc/default/cordon-agent
	rmdir /etc/cordon 2>/dev/null || true
	;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
fi
exit 0
