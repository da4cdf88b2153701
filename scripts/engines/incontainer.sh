#!/usr/bin/env bash
# The dev-container / CI-job case: the suite runs inside a container on the local engine, with the
# engine's socket mounted and no option given (the plugin must work out where ports are reached).
#
#   incontainer.sh start            build (once) and cache the runner image
#   incontainer.sh run [CMD...]     run CMD (default: the suite) in a runner container, this
#                                   checkout and its .venv mounted at the same path
#   incontainer.sh env              print the DOCKER_HOST the runner uses (the local socket)
#   incontainer.sh stop             remove runner containers left by an interrupted run
set -euo pipefail
SCRIPT_NAME=incontainer
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LABEL=pytest-dockerimg-engines.runner
SOCKET=/var/run/docker.sock

start() {
  runner_image
  [ -x "$ROOT/.venv/bin/pytest" ] || die "no $ROOT/.venv: python3 -m venv .venv && .venv/bin/pip install -e '.[test,dev]'"
  env_
}

env_() { echo "export DOCKER_HOST=unix://$SOCKET"; }

run() {
  start >/dev/null
  [ $# -gt 0 ] || set -- .venv/bin/pytest -q -p no:cacheprovider
  # The venv's interpreter lives outside the checkout (pyenv, /usr/local): mount its prefix too.
  local prefix
  prefix=$(dirname "$(dirname "$(readlink -f "$ROOT/.venv/bin/python3")")")
  # A docker CLI, as CI job images have one (the suite calls `docker push` and `docker pull`).
  local cli
  cli=$(command -v docker)
  # No --init: CI job containers run the test command as PID 1.
  host_docker run --rm -i --label "$LABEL" --name "pytest-dockerimg-runner-$$" \
    -v "$SOCKET:$SOCKET" -v "$ROOT:$ROOT" -v "$prefix:$prefix:ro" -v "$cli:/usr/local/bin/docker:ro" -w "${RUN_DIR:-$ROOT}" \
    -e HOME=/root -e PYTHONDONTWRITEBYTECODE=1 -e "PYTEST_ADDOPTS=${PYTEST_ADDOPTS:-}" \
    "$RUNNER_IMAGE" "$@"
}

stop() {
  local ids
  ids=$(host_docker ps -aq --filter "label=$LABEL")
  [ -z "$ids" ] || { log "removing runner containers"; host_docker rm -f $ids >/dev/null; }
}

case "${1:-}" in
  start) start ;;
  run) shift; run "$@" ;;
  env) env_ ;;
  stop) stop ;;
  *) echo "usage: $0 start|run [CMD...]|env|stop" >&2; exit 2 ;;
esac
