#!/usr/bin/env bash
# podman 5 (Debian forky) and its Docker-compatible API, run in a container of the local engine
# and reached over TCP at its bridge address (like dind.sh: nothing is installed on this machine).
#
#   podman.sh start   start it (idempotent), load the suite's base images, print DOCKER_HOST
#   podman.sh env     print `export DOCKER_HOST=tcp://ADDR:2375`
#   podman.sh stop    remove the container (the storage volume stays: the next start is fast)
#   podman.sh purge   stop, and remove the storage volume too
# Without systemd: cgroupfs and file events (so health checks never run by themselves); root here
# lacks CAP_SYS_RESOURCE, so the default nofile/nproc limits are capped in a containers.conf
# drop-in; short names resolve on docker.io; every 127.0.0.1 registry is plain HTTP.
set -euo pipefail
SCRIPT_NAME=podman
source "$(dirname "$0")/lib.sh"

NAME=pytest-dockerimg-podman
VOLUME=$NAME-storage
PORT=2375


read -r -d '' SETUP <<'SH' || true
mkdir -p /etc/containers/containers.conf.d /etc/containers/registries.conf.d
nofile=$(ulimit -Hn); nproc=$(awk '/Max processes/ {print $4}' /proc/self/limits)
[ "$nproc" = unlimited ] && nproc=65536
cat >/etc/containers/containers.conf.d/50-pytest-dockerimg.conf <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
# crun refuses cgroup v1 with a v2 hierarchy also mounted ("hybrid mode not supported").
runtime = "runc"
events_logger = "file"
[network]
firewall_driver = "iptables"
CONF
cat >/etc/containers/registries.conf.d/50-pytest-dockerimg.conf <<'CONF'
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "127.0.0.1"
insecure = true
CONF
exec podman system service -t 0 tcp://0.0.0.0:2375 >/var/log/podman.log 2>&1
SH

start() {
  forky_image
  if ! running; then
    host_docker rm -f "$NAME" >/dev/null 2>&1 || true
    log "starting $NAME"
    # shellcheck disable=SC2046
    host_docker run -d --name "$NAME" --hostname "$NAME" -e PODMAN_IGNORE_CGROUPSV1_WARNING=1 \
      $(cap_flags) \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --security-opt systempaths=unconfined \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      -v "$VOLUME":/var/lib/containers \
      --tmpfs /run --tmpfs /tmp \
      "$FORKY_IMAGE" sh -c "$SETUP" >/dev/null
  fi
  local ip
  ip=$(container_engine_wait /var/log/podman.log "podman in $NAME")
  # podman names loaded images localhost/NAME unless they carry a registry: load them as docker.io/.
  local image
  for image in "${BASE_IMAGES[@]}"; do
    host_docker exec "$NAME" podman image exists "docker.io/library/$image" && continue
    log "loading $image"
    host_docker save "$image" | host_docker exec -i "$NAME" podman load >/dev/null
    host_docker exec "$NAME" sh -c "podman image exists docker.io/library/$image ||
      podman tag localhost/$image docker.io/library/$image && podman rmi -i localhost/$image >/dev/null" >/dev/null
  done
  log "up: $(DOCKER_HOST=tcp://$ip:$PORT "$HOST_DOCKER" version -f '{{.Server.Version}}' 2>/dev/null || echo podman) at tcp://$ip:$PORT"
  container_engine_env
}

container_engine_main "$@"
