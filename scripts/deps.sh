#!/bin/sh
# Installs what faqbot needs to build and test on Debian bookworm, skipping
# what is already there. Run as root (or with sudo available).
set -eu

PKGS="build-essential cmake pkg-config libcurl4-openssl-dev libcjson-dev libpcre2-dev
libcmark-dev libutf8proc-dev libicu-dev libcmocka-dev libmicrohttpd-dev liblinear-dev python3 ca-certificates"
# Only for the test suite: the IRC server and its services (SASL), clang for
# the fuzzers, valgrind.
[ "${1:-}" = "--test" ] && PKGS="$PKGS inspircd atheme-services openssl clang libclang-rt-14-dev valgrind"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Debian starts these as system services on install; the tests start their own.
for svc in inspircd atheme-services; do
	if printf '%s' "$missing" | grep -q "$svc"; then
		$SUDO service "$svc" stop >/dev/null 2>&1 || true
	fi
done
