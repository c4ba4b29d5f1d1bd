#!/bin/sh
# custos preremove (deb prerm, rpm %preun): on removal (not on an upgrade)
# the node is stopped and the unit disabled. /var/lib/custos stays: it holds
# the node's data and keys.
set -e
case "$1" in
remove | 0)
	if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
		systemctl disable --now custos.service >/dev/null 2>&1 || true
	fi
	;;
esac
