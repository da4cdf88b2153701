#!/usr/bin/env bash
# Provision a Docker engine and the base images the test suite needs, on Debian.
#
# Idempotent and fast when everything is already there:
#   - installs docker.io, busybox-static, debootstrap and docker-registry (and python3-venv for
#     Debian's python3) when missing;
#   - starts dockerd in the background when no engine answers (removing a stale pid file);
#   - builds busybox:latest, debian:bookworm and a registry:2 stand-in locally when absent
#     (Docker Hub may be unreachable; users who can pull get the real images by those names);
#   - installs docker buildx from a newer Debian suite (scripts/engines/buildx.sh).
# Environment: DOCKERIMG_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

log() { printf '[provision] %s\n' "$*" >&2; }
mirror=${DOCKERIMG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DOCKER=docker
[ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker

engine_answers() { timeout 10 "$DOCKER" info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  # Debian's own python3 makes virtual environments only with python3-venv.
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
  return 0
}

start_engine() {
  engine_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ] && [[ "$DOCKER_HOST" != unix://* ]]; then
    log "DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local engine"
    return 1
  fi
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    log "removing stale /var/run/docker.pid"
    rm -f /var/run/docker.pid
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 120); do
    engine_answers && { log "engine up"; return 0; }
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; last log lines:"
  tail -20 /var/log/dockerd.log >&2 || true
  return 1
}

has_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

make_busybox() {
  has_image busybox:latest && return 0
  log "building busybox:latest from busybox-static"
  local dir; dir=$(mktemp -d)
  cp /bin/busybox "$dir/busybox"
  cat >"$dir/Dockerfile" <<'DF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
DF
  DOCKER_BUILDKIT=0 "$DOCKER" build -q -t busybox:latest "$dir" >/dev/null
  rm -rf "$dir"
}

make_debian() {
  has_image debian:bookworm && return 0
  log "building debian:bookworm with debootstrap (about 20-60 s)"
  local dir; dir=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$dir" "$mirror" >/dev/null
  tar -C "$dir" -c . | "$DOCKER" import -c 'CMD ["bash"]' - debian:bookworm >/dev/null
  rm -rf "$dir"
}

make_registry() {
  has_image registry:2 && return 0
  log "building a registry:2 stand-in from Debian's docker-registry"
  local dir; dir=$(mktemp -d)
  cat >"$dir/config.yml" <<'YML'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
YML
  cat >"$dir/Dockerfile" <<'DF'
FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry \
    && rm -rf /var/lib/apt/lists/*
COPY config.yml /etc/docker/registry/config.yml
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
DF
  DOCKER_BUILDKIT=0 "$DOCKER" build -q -t registry:2 "$dir" >/dev/null
  rm -rf "$dir"
}

install_packages
start_engine
make_busybox
make_debian
make_registry
# BuildKit builds need buildx for the docker CLI (bookworm has no package of it).
"$(dirname "$0")/engines/buildx.sh" || log "no docker buildx: the plugin builds with the classic builder"
log "ready: $("$DOCKER" version --format 'engine {{.Server.Version}}')"
