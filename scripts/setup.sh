#!/bin/sh
# Installs the Debian packages aerie needs to build and test, only those missing, so that a bare
# Debian 12 with git and make is enough. Extra package names may be given as arguments.
set -eu

packages="gcc make meson ninja-build pkg-config libjansson-dev libinih-dev libcmocka-dev
python3 python3-pytest procps valgrind strace clang libclang-rt-14-dev libncurses-dev tmux
scdoc man-db groff-base clang-tidy cppcheck libseccomp-dev libcap-ng-dev time
build-essential debhelper dpkg-dev lintian git bash-completion zsh systemd ruby $*"

missing=""
for p in $packages; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: missing Debian packages:$missing" >&2
	echo "setup: run as root, or: sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "setup: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
