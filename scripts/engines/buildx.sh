#!/usr/bin/env bash
# Install the docker buildx CLI plugin from a newer Debian suite, as a user of Debian bookworm
# would (bookworm has no docker-buildx package), so that the docker CLI builds with BuildKit.
#
# Idempotent: does nothing when `docker buildx version` already works for the CLI at
# /usr/bin/docker (Debian's docker.io) or the first docker on PATH.
# The package lists of the other suite go to a private folder: the system's apt sources and
# pins are not changed. forky's Release file may be past its Valid-Until date.
# Environment: DOCKERIMG_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              DOCKERIMG_BUILDX_SUITES (default "forky trixie": the first that has it wins).
set -euo pipefail

log() { printf '[buildx] %s\n' "$*" >&2; }
mirror=${DOCKERIMG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suites=${DOCKERIMG_BUILDX_SUITES:-forky trixie}

has_buildx() {
  local cli
  for cli in /usr/bin/docker "$(command -v docker || true)"; do
    [ -n "$cli" ] && [ -x "$cli" ] && "$cli" buildx version >/dev/null 2>&1 && return 0
  done
  return 1
}

if has_buildx; then
  log "docker buildx is installed"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/parts"
apt_opts=(
  -o Dir::Etc::sourcelist="$work/sources.list"
  -o Dir::Etc::sourceparts="$work/parts"
  -o Dir::State::lists="$work/lists"
  -o Dir::Cache::archives="$work/archives"
  -o Acquire::Check-Valid-Until=false
  -o APT::Get::List-Cleanup=false
)
for suite in $suites; do
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$work/sources.list"
  log "looking for docker-buildx in $suite"
  if ! apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1; then
    log "apt-get update of $suite failed"; continue
  fi
  if (cd "$work" && apt-get "${apt_opts[@]}" download -qq docker-buildx >/dev/null 2>&1); then
    deb=$(ls "$work"/docker-buildx_*.deb | head -1)
    log "installing $(basename "$deb")"
    # The package holds only the plugin binary; it depends on nothing newer than bookworm has.
    dpkg -i "$deb" >/dev/null
    if has_buildx; then
      log "ready: $(/usr/bin/docker buildx version 2>/dev/null || docker buildx version)"
      exit 0
    fi
    log "installed, but docker buildx does not run"
  fi
done
log "could not install docker-buildx from: $suites"
exit 1
