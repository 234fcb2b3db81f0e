#!/usr/bin/env bash
# Build a sandbox image offline from Debian packages, cached by the hash of its inputs.
# Usage: sandbox/build-image.sh [TAG_PREFIX [PACKAGES_FILE]]   prints the image reference on stdout.
# The default is the default sandbox image from packages.txt; the tests' client matrix builds
# `sandgate-clients` from packages-clients.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-sandgate-sandbox}
list=${2:-$here/packages.txt}
packages=$(grep -v '^#' "$list" | tr '\n' ' ')
key=$(cat "$here/build-image.sh" "$list" | sha256sum | cut -c1-12)
ref="$name:$key"
if docker image inspect "$ref" >/dev/null 2>&1; then
  docker tag "$ref" "$name:latest"
  echo "$ref"
  exit 0
fi
work=$(mktemp -d /var/tmp/sandgate-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "building sandbox image $ref with debootstrap and apt (a few minutes)..." >&2
debootstrap --variant=minbase bookworm "$work/root" http://deb.debian.org/debian >"$work/log" 2>&1 \
  || { tail -20 "$work/log" >&2; exit 1; }
# apt inside the new root resolves what debootstrap's --include cannot (virtual packages, as npm's need).
# shellcheck disable=SC2086  # one word per package
DEBIAN_FRONTEND=noninteractive chroot "$work/root" apt-get install -y -q --no-install-recommends $packages \
  >>"$work/log" 2>&1 || { tail -20 "$work/log" >&2; exit 1; }
rm -rf "$work/root"/var/cache/apt/archives/*.deb "$work/root"/var/cache/apt/*.bin "$work/root"/var/lib/apt/lists/* "$work/root"/usr/share/doc/* "$work/root"/usr/share/man/*
# A fixed, unprivileged home for the sandbox user; /tmp is a tmpfs at run time.
mkdir -p "$work/root/run/sandgate"
tar -C "$work/root" -c . | docker import \
  --change 'USER 65534:65534' --change 'ENV HOME=/tmp' --change 'WORKDIR /tmp' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
  - "$ref" >/dev/null
docker tag "$ref" "$name:latest"
echo "$ref"
