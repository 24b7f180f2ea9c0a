#!/bin/sh
# cordon-collector, after install or upgrade: enable and (re)start the
# service where systemd runs. The first start creates the CA and the admin
# API key in /var/lib/cordon.
set -e

case "$1" in
configure | 1 | 2 | "") ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl enable cordon-collector.service || true
	systemctl restart cordon-collector.service || true
fi
exit 0
