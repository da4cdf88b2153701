#!/usr/bin/env bash
# Docker 28.5 (Debian forky: docker.io, docker-cli, docker-buildx) as docker-in-docker on the
# local engine, reached over TCP at its bridge address.
#
#   dind.sh start   start it (idempotent), load the suite's base images, print DOCKER_HOST
#   dind.sh env     print `export DOCKER_HOST=tcp://ADDR:2375` for the running engine
#   dind.sh stop    remove the container (the data volume stays, so the next start is fast)
#   dind.sh purge   stop, and remove the data volume too
# DOCKERIMG_DIND_SNAPSHOTTER=1 starts the variant with the containerd image store
# ("features": {"containerd-snapshotter": true}); it is a separate container and volume.
set -euo pipefail
SCRIPT_NAME=dind
source "$(dirname "$0")/lib.sh"

if [ "${DOCKERIMG_DIND_SNAPSHOTTER:-0}" = 1 ]; then
  NAME=pytest-dockerimg-dind-containerd
  FEATURES='{"features": {"containerd-snapshotter": true}}'
else
  NAME=pytest-dockerimg-dind
  FEATURES='{}'
fi
VOLUME=$NAME-data
PORT=2375


start() {
  forky_image
  if ! running; then
    host_docker rm -f "$NAME" >/dev/null 2>&1 || true
    log "starting $NAME"
    # shellcheck disable=SC2046
    host_docker run -d --name "$NAME" --hostname "$NAME" \
      $(cap_flags) \
      --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
      --security-opt systempaths=unconfined \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      -v "$VOLUME":/var/lib/docker \
      --tmpfs /run --tmpfs /tmp \
      "$FORKY_IMAGE" sh -c "mkdir -p /etc/docker && echo '$FEATURES' >/etc/docker/daemon.json &&
        exec dockerd -H unix:///var/run/docker.sock -H tcp://0.0.0.0:$PORT --tls=false \
          --cgroup-parent=/$NAME >/var/log/dockerd.log 2>&1" >/dev/null
  fi
  local ip
  ip=$(container_engine_wait /var/log/dockerd.log "the engine in $NAME")
  load_base_images host_docker exec -i "$NAME" docker
  log "up: Docker $(DOCKER_HOST=tcp://$ip:$PORT "$HOST_DOCKER" version -f '{{.Server.Version}}') at tcp://$ip:$PORT"
  container_engine_env
}

container_engine_main "$@"
