#!/bin/sh
# custos postremove (deb postrm, rpm %postun): systemd forgets the unit.
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
