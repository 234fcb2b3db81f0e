#!/usr/bin/env bash
# One idempotent setup for a fresh Debian bookworm machine (run as root): Debian packages, dockerd with
# the runsc runtime, the sandbox forwarder, the default sandbox image and the tests' client image (each
# cached by its inputs), the venv.
# A second run only checks and returns.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PACKAGES=(docker.io docker-compose runsc debootstrap busybox-static wrk iproute2 gcc libc6-dev make curl git python3-venv
  postgresql)  # postgresql: the store tests start a private cluster of their own (tests/support/postgres.py)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

say "configuring dockerd's runsc-sandgate runtime"
python3 scripts/docker_daemon_config.py /etc/docker/daemon.json
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  setsid nohup /usr/sbin/dockerd >/var/log/sandgate-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/sandgate-dockerd.log >&2; exit 1; }
elif ! docker info --format '{{json .Runtimes}}' | grep -q runsc-sandgate; then
  kill -HUP "$(cat /var/run/docker.pid)"  # reloads runtimes
  sleep 1
fi

say "building the sandbox forwarder"
mkdir -p build
if [ ! -x build/sandgate-forward ] || [ sandbox/forward.c -nt build/sandgate-forward ]; then
  gcc -static -Os -Wall -Wextra -o build/sandgate-forward sandbox/forward.c
fi

say "sandbox images: the default one and the client-matrix test image (a first build takes a few minutes)"
# Side by side: a build mostly waits on dpkg unpacking small files, not on a CPU.
sandbox/build-image.sh sandgate-sandbox >/dev/null &
default_image=$!
sandbox/build-image.sh sandgate-clients sandbox/packages-clients.txt >/dev/null &
clients_image=$!
wait "$default_image"
wait "$clients_image"

say "python venv"
stamp=.venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-* && touch "$stamp"
fi
if [ ! -f control_plane/api/gen/.stamp ] || [ -n "$(find protos -name '*.proto' -newer control_plane/api/gen/.stamp)" ]; then
  scripts/gen-protos.sh
fi
say "ready"
