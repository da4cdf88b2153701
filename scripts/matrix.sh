#!/usr/bin/env bash
# Run the suite (which also runs example_project/) against one engine of the matrix: start the
# engine with its script, run pytest against it, stop the engine (also when pytest fails).
#
#   scripts/matrix.sh ENGINE [pytest args]
#   ENGINE: local       the local engine, as it is (nothing started)
#           dind        Docker 28.5 (Debian forky) in a container, over TCP      scripts/engines/dind.sh
#           dind-containerd   the same with the containerd image store
#           incontainer the suite in a container of the local engine, socket mounted, no option
#           podman      podman 5 (Debian forky) Docker-compatible API over TCP   scripts/engines/podman.sh
#           netns-tcp   Docker 20.10 in a network namespace of its own, over TCP  scripts/engines/netns.sh
#           netns-ssh   the same over ssh:// (needs paramiko: pip install 'pytest-dockerimg[ssh]')
# Prints the minutes each step took. MATRIX_KEEP=1 leaves the engine running.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
engines=$here/engines
engine=${1:?usage: scripts/matrix.sh ENGINE [pytest args]}
shift
pytest_args=("$@")
[ ${#pytest_args[@]} -gt 0 ] || pytest_args=(-q -p no:cacheprovider -rfEs)
PYTEST=${PYTEST:-$root/.venv/bin/pytest}

stop_engine() {
  [ "${MATRIX_KEEP:-0}" = 1 ] && return 0
  case "$engine" in
    dind) "$engines/dind.sh" stop ;;
    dind-containerd) DOCKERIMG_DIND_SNAPSHOTTER=1 "$engines/dind.sh" stop ;;
    podman) "$engines/podman.sh" stop ;;
    netns-*) "$engines/netns.sh" stop ;;
    incontainer) "$engines/incontainer.sh" stop ;;
  esac
}

started=$(date +%s)
case "$engine" in
  local) env_line="" ;;
  dind) env_line=$("$engines/dind.sh" start) ;;
  dind-containerd) env_line=$(DOCKERIMG_DIND_SNAPSHOTTER=1 "$engines/dind.sh" start) ;;
  podman) env_line=$("$engines/podman.sh" start) ;;
  netns-tcp) env_line=$("$engines/netns.sh" start tcp) ;;
  netns-ssh) env_line=$("$engines/netns.sh" start ssh) ;;
  incontainer) env_line=$("$engines/incontainer.sh" start) ;;
  *) echo "unknown engine $engine (local, dind, dind-containerd, incontainer, podman, netns-tcp, netns-ssh)" >&2; exit 2 ;;
esac || { echo "[matrix] $engine did not start" >&2; stop_engine; exit 1; }
trap stop_engine EXIT
ready=$(date +%s)
echo "[matrix] $engine up in $(( ready - started )) s${env_line:+: $env_line}" >&2

cd "$root"
run() {  # run ARGS...: pytest with the engine's DOCKER_HOST (nothing else changes)
  if [ "$engine" = incontainer ]; then
    "$engines/incontainer.sh" run .venv/bin/pytest "$@"
  else
    env ${env_line:+"${env_line#export }"} "$PYTEST" "$@"
  fi
}
took() { echo "$(( ($(date +%s) - $1) / 60 )) min $(( ($(date +%s) - $1) % 60 )) s"; }

step=$(date +%s)
run "${pytest_args[@]}"
status=$?
echo "[matrix] $engine: suite exit $status after $(took "$step")" >&2
if [ "${MATRIX_EXAMPLE:-1}" = 1 ]; then
  # The suite runs the example project too (tests/test_example_project.py); this run gives its
  # own counts.
  step=$(date +%s)
  run -q -p no:cacheprovider -rfEs example_project
  example=$?
  echo "[matrix] $engine: example project exit $example after $(took "$step")" >&2
  [ $status -ne 0 ] || status=$example
fi
exit $status
