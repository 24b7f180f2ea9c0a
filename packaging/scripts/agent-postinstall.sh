#!/bin/sh
# cordon-agent, after install or upgrade (deb: configure; rpm: 1 or 2).
# Enrolls the host when CORDON_COLLECTOR, CORDON_ENROLL_TOKEN and
# CORDON_CA_PIN are set (in the environment of the package manager or in
# /etc/default/cordon-agent or /etc/sysconfig/cordon-agent), then enables
# the service and starts it once the host is enrolled. An upgrade keeps
# the enrollment, the spool and the isolation state in /var/lib/cordon-agent.
set -e

case "$1" in
configure | 1 | 2 | "") ;;
*) exit 0 ;;
esac

for f in /etc/default/cordon-agent /etc/sysconfig/cordon-agent; do
	if [ -r "$f" ]; then
		set -a
		. "$f"
		set +a
	fi
done

state=/var/lib/cordon-agent
if [ ! -f "$state/agent.json" ] && [ -n "${CORDON_COLLECTOR:-}" ] && [ -n "${CORDON_ENROLL_TOKEN:-}" ] && [ -n "${CORDON_CA_PIN:-}" ]; then
	if /usr/bin/cordon-agent enroll; then
		:
	else
		echo "cordon-agent: enrollment failed; the package is installed: enroll later with 'cordon-agent enroll'" >&2
	fi
fi

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	systemctl daemon-reload || true
	systemctl enable cordon-agent.service || true
	if [ -f "$state/agent.json" ]; then
		systemctl restart cordon-agent.service || true
	else
		echo "cordon-agent: not enrolled yet; enroll with 'cordon-agent enroll', then: systemctl start cordon-agent" >&2
	fi
fi
exit 0
