#!/bin/sh
# packaging/build.sh BINARY NFPM OUTDIR VERSION [PACKAGER...]
#
# Builds the custos packages (deb and rpm unless PACKAGERs are named) of
# BINARY into OUTDIR with the nfpm binary NFPM: generates the shell
# completions and the man pages from BINARY itself (cobra), then runs nfpm
# with packaging/nfpm.yaml. `make package` and the package test
# (packaging/package_test.go) both build through here. VERSION is semver
# (1.2.3, 0.0.0-dev.abc1234). The man pages are dated SOURCE_DATE_EPOCH,
# which defaults to the last commit's time, so a build is reproducible.
set -eu
if [ $# -lt 4 ]; then
	echo "usage: $0 BINARY NFPM OUTDIR VERSION [PACKAGER...]" >&2
	exit 2
fi
abs() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
bin=$(abs "$1") nfpm=$(abs "$2") out=$(abs "$3") version=$4
shift 4
cd "$(dirname "$0")/.."
: "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
export SOURCE_DATE_EPOCH

gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
mkdir -p "$gen/completions" "$out"
"$bin" completion bash >"$gen/completions/custos.bash"
"$bin" completion zsh >"$gen/completions/_custos"
"$bin" completion fish >"$gen/completions/custos.fish"
"$bin" docs man "$gen/man"
gzip -9n "$gen"/man/*.1
# The Debian changelog (lintian asks for one): a single entry, this build,
# for the version nfpm writes (semver's "-" as "~", the release "-1").
{
	printf 'custos (%s-1) unstable; urgency=medium\n\n' "$(echo "$version" | sed 's/-/~/')"
	printf '  * Package of custos %s.\n\n' "$version"
	printf ' -- %s  %s\n' "$(sed -n 's/^maintainer: //p' packaging/nfpm.yaml)" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} >"$gen/changelog.Debian"
gzip -9n "$gen/changelog.Debian"

arch=$(go version -m "$bin" 2>/dev/null | sed -n 's/^[[:space:]]*build[[:space:]]*GOARCH=//p')
: "${arch:=$(go env GOARCH)}"
[ $# -gt 0 ] || set -- deb rpm
for p in "$@"; do
	CUSTOS_BINARY=$bin CUSTOS_GEN=$gen CUSTOS_VERSION=$version CUSTOS_ARCH=$arch \
		"$nfpm" package --config packaging/nfpm.yaml --packager "$p" --target "$out/"
done
