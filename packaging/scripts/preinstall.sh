#!/bin/sh
# custos preinstall (deb preinst, rpm %pre): the service's own user and
# group, before the files owned by them are unpacked. Never removed: files
# may still be owned by them (Debian policy 9.2.2). Under DPKG_ROOT (dpkg
# --root with --force-script-chrootless, as the package test installs it)
# the user is created in that root's /etc, not the host's.
set -e
root=${DPKG_ROOT:-}
exists() { # exists DATABASE NAME
	if [ -n "$root" ]; then
		grep -q "^$2:" "$root/etc/$1" 2>/dev/null
	else
		getent "$1" "$2" >/dev/null 2>&1
	fi
}
prefix=
[ -z "$root" ] || prefix="--prefix $root"
if ! exists group custos; then
	# shellcheck disable=SC2086
	groupadd $prefix --system custos
fi
if ! exists passwd custos; then
	# shellcheck disable=SC2086
	useradd $prefix --system --gid custos --home-dir /var/lib/custos --no-create-home \
		--shell /usr/sbin/nologin --comment "Custos node" custos
fi
