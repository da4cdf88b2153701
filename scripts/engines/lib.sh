# Shared helpers of the engine scripts (sourced, not run).
# A Debian forky root file system with Docker 28.5, its CLI, buildx and podman, cached as a local
# image (building it takes minutes; every later start reuses it).
set -euo pipefail

FORKY_IMAGE=${DOCKERIMG_FORKY_IMAGE:-pytest-dockerimg-engines/forky:1}
MIRROR=${DOCKERIMG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_DOCKER=${HOST_DOCKER:-docker}
# The images the test suite runs; each engine gets them from the local engine (no Docker Hub).
BASE_IMAGES=(busybox:latest debian:bookworm registry:2)

log() { printf '[%s] %s\n' "${SCRIPT_NAME:-engines}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Talk to the local engine, whatever DOCKER_HOST the caller exported for the engine under test.
host_docker() { DOCKER_HOST=unix:///var/run/docker.sock DOCKER_CONTEXT= "$HOST_DOCKER" "$@"; }

forky_image() {
  host_docker image inspect "$FORKY_IMAGE" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
  local root
  root=$(mktemp -d /var/tmp/forky-root.XXXXXX)
  log "building $FORKY_IMAGE from $MIRROR (a few minutes, once)"
  # debootstrap has no forky script yet; sid's works.
  debootstrap --variant=minbase forky "$root" "$MIRROR" /usr/share/debootstrap/scripts/sid >&2
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' RETURN
  chroot "$root" apt-get -o Acquire::Check-Valid-Until=false update -qq >&2
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    docker.io docker-cli docker-buildx iptables ca-certificates iproute2 procps \
    podman crun conmon netavark aardvark-dns fuse-overlayfs openssh-server >&2
  chroot "$root" apt-get clean
  umount "$root/proc"
  tar -C "$root" -c . | host_docker import - "$FORKY_IMAGE" >/dev/null
  rm -rf "$root"
  log "cached as $FORKY_IMAGE"
}

# Every capability this machine's root holds, as --cap-add flags: root here lacks
# CAP_SYS_RESOURCE, so --privileged fails ("unable to apply caps").
cap_flags() {
  local names=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
    LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE
    SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME
    SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG
    WAKE_ALARM BLOCK_SUSPEND AUDIT_READ)
  # (PERFMON, BPF and CHECKPOINT_RESTORE left out: Docker 20.10 does not know them.)
  local bounding bit
  bounding=$((16#$(awk '/^CapBnd/ {print $2}' /proc/self/status)))
  for bit in "${!names[@]}"; do
    if (( (bounding >> bit) & 1 )); then printf -- '--cap-add=%s ' "${names[$bit]}"; fi
  done
}

# Load the suite's base images into the engine that `$@` runs (a docker command prefix).
load_base_images() {
  local image
  for image in "${BASE_IMAGES[@]}"; do
    if "$@" image inspect "$image" >/dev/null 2>&1; then continue; fi
    host_docker image inspect "$image" >/dev/null 2>&1 || { log "no $image on the local engine"; continue; }
    log "loading $image"
    host_docker save "$image" | "$@" load >/dev/null
  done
}

# An address is safe to send to when the route to it leaves through a local bridge.
check_bridge_route() {
  local address=$1 route
  route=$(ip route get "$address" 2>/dev/null) || die "no route to $address"
  case "$route" in
    *" dev docker0 "* | *" dev br-"* | *" dev veth"* | *" dev dkimg"*) ;;
    *) die "$address is routed as '$route', not through a local bridge; refusing to use it" ;;
  esac
}

wait_for_engine() {
  local host=$1 tries=${2:-120}
  for _ in $(seq 1 "$tries"); do
    DOCKER_HOST=$host DOCKER_CONTEXT= timeout 5 "$HOST_DOCKER" version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  return 1
}

# Debian bookworm with this machine's python3 and git: the suite runs in it with this checkout and
# its virtual environment mounted at the same paths (the venv's python3 is /usr/bin/python3 in both).
RUNNER_IMAGE=${DOCKERIMG_RUNNER_IMAGE:-pytest-dockerimg-engines/runner:1}

runner_image() {
  host_docker image inspect "$RUNNER_IMAGE" >/dev/null 2>&1 && return 0
  local root
  root=$(mktemp -d /var/tmp/runner-root.XXXXXX)
  log "building $RUNNER_IMAGE from $MIRROR (a few minutes, once)"
  debootstrap --variant=minbase --include=python3,git,ca-certificates,iproute2,procps,curl \
    bookworm "$root" "$MIRROR" >&2
  chroot "$root" apt-get clean
  tar -C "$root" -c . | host_docker import - "$RUNNER_IMAGE" >/dev/null
  rm -rf "$root"
  log "cached as $RUNNER_IMAGE"
}

# The commands of an engine that runs in a container of this machine's engine, reached over TCP
# at its bridge address: the script sets NAME, PORT and VOLUME and defines start; this gives
# the rest, and reads the command line.
address() { host_docker inspect -f '{{.NetworkSettings.IPAddress}}' "$NAME" 2>/dev/null; }
running() { [ "$(host_docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ]; }

container_engine_wait() {  # container_engine_wait LOG WHAT: wait until it answers; print its address
  local ip
  ip=$(address)
  [ -n "$ip" ] || die "$NAME has no address on the default bridge"
  check_bridge_route "$ip"
  wait_for_engine "tcp://$ip:$PORT" 120 || {
    host_docker exec "$NAME" tail -20 "$1" >&2 || true
    die "$2 does not answer at tcp://$ip:$PORT"
  }
  echo "$ip"
}

container_engine_env() {
  running || die "$NAME is not running ($SCRIPT_NAME.sh start)"
  echo "export DOCKER_HOST=tcp://$(address):$PORT"
}

container_engine_stop() {
  if host_docker inspect "$NAME" >/dev/null 2>&1; then
    log "removing $NAME"
    host_docker rm -f "$NAME" >/dev/null
  fi
}

container_engine_main() {
  case "${1:-}" in
    start) start ;;
    env) container_engine_env ;;
    stop) container_engine_stop ;;
    purge) container_engine_stop; host_docker volume rm "$VOLUME" >/dev/null 2>&1 || true ;;
    *) echo "usage: $0 start|stop|env|purge" >&2; exit 2 ;;
  esac
}
