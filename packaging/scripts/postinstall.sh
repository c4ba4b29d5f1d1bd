#!/bin/sh
# custos postinstall (deb postinst, rpm %post): systemd learns the unit. The
# service is not enabled or started: a node starts only once it has been
# initialised or joined (docs/operations.md, "Install from the package").
# On an upgrade a running node is restarted to run the new binary.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	case "$1" in
	configure | 2)
		if [ -n "$2" ] || [ "$1" = 2 ]; then
			systemctl try-restart custos.service >/dev/null 2>&1 || true
		fi
		;;
	esac
fi
