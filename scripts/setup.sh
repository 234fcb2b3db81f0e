#!/usr/bin/env bash
# One idempotent setup for a Debian bookworm machine (run as root): Debian packages, runsc from
# bookworm-backports, the runsc-sandgate runtime in dockerd's daemon.json (and nothing else of dockerd's
# configuration), the sandbox forwarder, the default sandbox image and the tests' client image (each
# cached by its inputs), the venv. It says each change it makes to the host; a second run only checks.
# SANDGATE_KEEP_RUNSC=1 keeps an installed runsc as it is (a host whose running sandboxes must not see
# their runtime replaced).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

PACKAGES=(docker.io docker-compose debootstrap busybox-static wrk iproute2 gcc libc6-dev make curl git python3-venv
  postgresql)  # postgresql: the store tests start a private cluster of their own (tests/support/postgres.py)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# runsc: the newest release Debian builds for bookworm is in bookworm-backports (bookworm's own is from
# 2022-12-19). The service checks the release at start (control_plane/domain/runsc_version.py).
RUNSC_RECOMMENDED=0.0~20240729.0
BACKPORTS=/etc/apt/sources.list.d/sandgate-bookworm-backports.sources
installed=$(dpkg-query -W -f='${Version}' runsc 2>/dev/null || true)
if [ -n "$installed" ] && [ "${SANDGATE_KEEP_RUNSC:-}" = 1 ]; then
  say "keeping runsc $installed (SANDGATE_KEEP_RUNSC=1)"
elif [ -z "$installed" ] || ! dpkg --compare-versions "$installed" ge "$RUNSC_RECOMMENDED"; then
  if ! grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    say "adding Debian's bookworm-backports to apt's sources: $BACKPORTS (apt prefers bookworm unless asked)"
    printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$BACKPORTS"
  fi
  say "installing runsc from bookworm-backports (installed: ${installed:-none}; wanted: $RUNSC_RECOMMENDED or newer)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports runsc >/dev/null
fi

# Only the runsc-sandgate runtime entry: the host's bridge, iptables and every other dockerd setting stay
# as they are (sandboxes use no docker network at all).
say "dockerd: the runsc-sandgate runtime in /etc/docker/daemon.json"
daemon_json=$(python3 -m control_plane.docker_daemon /etc/docker/daemon.json "$(command -v runsc)")
printf '    %s\n' "$daemon_json" >&2
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  setsid nohup /usr/sbin/dockerd >/var/log/sandgate-dockerd.log 2>&1 </dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/sandgate-dockerd.log >&2; exit 1; }
elif [[ "$daemon_json" != *": unchanged "* ]] || ! docker info --format '{{json .Runtimes}}' | grep -q runsc-sandgate; then
  say "reloading dockerd's configuration (SIGHUP: running containers and networks are not touched)"
  kill -HUP "$(cat /var/run/docker.pid)"
  for _ in $(seq 1 20); do docker info --format '{{json .Runtimes}}' | grep -q runsc-sandgate && break; sleep 0.5; done
fi

say "building the sandbox forwarder"
# Into the package, where an installed wheel has it too (setup.py compiles it when the package is built).
sandbox=control_plane/sandbox
if [ ! -x $sandbox/sandgate-forward ] || [ $sandbox/forward.c -nt $sandbox/sandgate-forward ]; then
  gcc -static -Os -Wall -Wextra -o $sandbox/sandgate-forward $sandbox/forward.c
fi

say "sandbox images: the default one and the client-matrix test image (a first build takes a few minutes)"
# Side by side: a build mostly waits on dpkg unpacking small files, not on a CPU.
$sandbox/build-image.sh sandgate-sandbox >/dev/null &
default_image=$!
$sandbox/build-image.sh sandgate-clients $sandbox/packages-clients.txt >/dev/null &
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
