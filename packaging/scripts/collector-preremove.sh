#!/bin/sh
# cordon-collector, before removal (deb: remove; rpm: 0); an upgrade is
# restarted by the new package's postinstall.
set -e

case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl stop cordon-collector.service || true
	systemctl disable cordon-collector.service || true
fi
if [ -f /etc/init.d/cordon-collector ]; then
	/usr/bin/cordon-collector service uninstall || true
fi
exit 0
