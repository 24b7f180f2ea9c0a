#!/bin/sh
# cordon-agent, before removal (deb: remove; rpm: 0). An upgrade (deb:
# upgrade; rpm: 1) leaves the running agent to the new package's
# postinstall, which restarts it.
set -e

case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl stop cordon-agent.service || true
	systemctl disable cordon-agent.service || true
fi
# A service installed by hand with 'cordon-agent service install' on a
# machine without systemd.
if [ -f /etc/init.d/cordon-agent ]; then
	/usr/bin/cordon-agent service uninstall || true
fi
exit 0
