#!/usr/bin/env bash
# A second host: this machine's dockerd (Debian's 20.10) in a network namespace of its own, with
# its own address, data root, exec root, pid file, socket and containerd namespace, reached over
# TCP and over ssh:// (an sshd in the same namespace, MaxSessions 100: docker-py multiplexes every
# connection as one channel of a single SSH connection; sshd's default of 10 fails busy clients
# with ChannelException(2, 'Connect failed')).
#
#   netns.sh start        start it (idempotent), load the base images, print DOCKER_HOST (ssh://)
#   netns.sh env [tcp]    print `export DOCKER_HOST=ssh://root@10.203.0.2` (or tcp://10.203.0.2:2375)
#   netns.sh stop         stop dockerd and sshd, remove the namespace, the veth and the NAT rules
# The ssh key is /var/lib/pytest-dkimg/ssh/id_ed25519, installed as ~/.ssh/id_ed25519 unless one
# exists (then ~/.ssh/config names it), and the host key is added to ~/.ssh/known_hosts.
# Never run a second dockerd with --bridge=none in this machine's namespace: it deletes docker0.
set -euo pipefail
SCRIPT_NAME=netns
source "$(dirname "$0")/lib.sh"

NS=pytest-dkimg
HOST_IF=dkimg0
NS_IF=dkimg1
HOST_ADDR=10.203.0.1
NS_ADDR=10.203.0.2
SUBNET=10.203.0.0/24
STATE=/var/lib/pytest-dkimg
RUN=/var/run/pytest-dkimg
SOCKET=$RUN/docker.sock
SSH_DIR=$STATE/ssh
SSHD_ROOT=$STATE/openssh   # Debian's sshd, unpacked (not installed: no service is started)
in_ns() { nsenter --net=/run/netns/$NS "$@"; }

network() {
  [ -e /run/netns/$NS ] || ip netns add $NS
  if ! ip link show $HOST_IF >/dev/null 2>&1; then
    ip link add $HOST_IF type veth peer name $NS_IF
    ip link set $NS_IF netns $NS
    ip addr add $HOST_ADDR/24 dev $HOST_IF
    ip link set $HOST_IF up
    in_ns ip addr add $NS_ADDR/24 dev $NS_IF
    in_ns ip link set $NS_IF up
    in_ns ip link set lo up
    in_ns ip route add default via $HOST_ADDR
  fi
  sysctl -qw net.ipv4.ip_forward=1
  # NAT out through this machine; a local dockerd sets the FORWARD policy to DROP.
  iptables -t nat -C POSTROUTING -s $SUBNET ! -o $HOST_IF -j MASQUERADE 2>/dev/null ||
    iptables -t nat -A POSTROUTING -s $SUBNET ! -o $HOST_IF -j MASQUERADE
  iptables -C FORWARD -i $HOST_IF -j ACCEPT 2>/dev/null || iptables -I FORWARD -i $HOST_IF -j ACCEPT
  iptables -C FORWARD -o $HOST_IF -j ACCEPT 2>/dev/null || iptables -I FORWARD -o $HOST_IF -j ACCEPT
  check_bridge_route $NS_ADDR
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pid() {  # stop_pid PIDFILE: stop that process (ours: dockerd or sshd), remove the file
  local pid
  if pid_alive "$1"; then
    pid=$(cat "$1")
    log "stopping $(basename "$1" .pid) ($pid)"
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$1"
}

engine() {
  mkdir -p $STATE/docker $RUN/exec
  if ! pid_alive $RUN/docker.pid; then
    rm -f $RUN/docker.pid  # stale: ours, from an engine that died
    log "starting dockerd in namespace $NS (log: $STATE/dockerd.log)"
    # nsenter, not `ip netns exec` (which remounts /sys and hides the cgroup mounts).
    setsid nsenter --net=/run/netns/$NS /usr/sbin/dockerd \
      --data-root $STATE/docker --exec-root $RUN/exec --pidfile $RUN/docker.pid \
      -H unix://$SOCKET -H tcp://$NS_ADDR:2375 --tls=false \
      --containerd-namespace $NS --containerd-plugins-namespace $NS-plugins \
      --bip 172.31.0.1/24 >$STATE/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    DOCKER_HOST=unix://$SOCKET timeout 5 "$HOST_DOCKER" version >/dev/null 2>&1 && break
    sleep 0.5
  done
  DOCKER_HOST=unix://$SOCKET timeout 5 "$HOST_DOCKER" version >/dev/null 2>&1 || {
    tail -20 $STATE/dockerd.log >&2; die "dockerd in $NS does not answer"; }
  load_base_images env DOCKER_HOST=unix://$SOCKET "$HOST_DOCKER"
}

sshd_binary() {
  [ -x $SSHD_ROOT/usr/sbin/sshd ] && return 0
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download openssh-server libwrap0 >/dev/null 2>&1) || die "cannot download openssh-server"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" $SSHD_ROOT; done
  rm -rf "$tmp"
}

ssh_setup() {
  sshd_binary
  # sshd's privilege separation user, as the openssh-server package would create it.
  id sshd >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
  mkdir -p $SSH_DIR /run/sshd ~/.ssh
  chmod 700 ~/.ssh
  [ -f $SSH_DIR/host_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f $SSH_DIR/host_ed25519
  [ -f $SSH_DIR/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -f $SSH_DIR/id_ed25519 -C pytest-dkimg
  cp $SSH_DIR/id_ed25519.pub $SSH_DIR/authorized_keys
  # Every connection of docker-py and of the docker CLI runs `docker system dial-stdio` through
  # root's shell, and bash reads ~/.bashrc when sshd starts it (this "second host" shares this
  # machine's /root, whose ~/.bashrc runs `pyenv init`: 0.4 s a connection). Bash reads it only as
  # the top-level shell: SHLVL=1 from sshd makes it the second.
  cat >$SSH_DIR/sshd_config.new <<CONF
ListenAddress $NS_ADDR
HostKey $SSH_DIR/host_ed25519
PidFile $RUN/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 100
MaxStartups 100
SetEnv DOCKER_HOST=unix://$SOCKET SHLVL=1
CONF
  if ! cmp -s $SSH_DIR/sshd_config.new $SSH_DIR/sshd_config && pid_alive $RUN/sshd.pid; then
    log "sshd's configuration changed: restarting it"
    stop_pid $RUN/sshd.pid
  fi
  mv $SSH_DIR/sshd_config.new $SSH_DIR/sshd_config
  if ! pid_alive $RUN/sshd.pid; then
    rm -f $RUN/sshd.pid
    log "starting sshd in namespace $NS"
    in_ns env LD_LIBRARY_PATH=$SSHD_ROOT/usr/lib/x86_64-linux-gnu:$SSHD_ROOT/lib/x86_64-linux-gnu \
      $SSHD_ROOT/usr/sbin/sshd -f $SSH_DIR/sshd_config -E $STATE/sshd.log
  fi
  # The client side: this user's key and known host (paramiko reads ~/.ssh, as ssh does).
  if [ ! -f ~/.ssh/id_ed25519 ]; then
    cp $SSH_DIR/id_ed25519 $SSH_DIR/id_ed25519.pub ~/.ssh/
  elif ! cmp -s ~/.ssh/id_ed25519 $SSH_DIR/id_ed25519; then
    grep -q "^Host $NS_ADDR\$" ~/.ssh/config 2>/dev/null ||
      printf 'Host %s\n  IdentityFile %s\n' $NS_ADDR $SSH_DIR/id_ed25519 >>~/.ssh/config
  fi
  local key
  key="$NS_ADDR $(cut -d' ' -f1,2 $SSH_DIR/host_ed25519.pub)"
  grep -qxF "$key" ~/.ssh/known_hosts 2>/dev/null || echo "$key" >>~/.ssh/known_hosts
  for _ in $(seq 1 20); do
    ssh -o BatchMode=yes root@$NS_ADDR true 2>/dev/null && return 0
    sleep 0.5
  done
  tail -5 $STATE/sshd.log >&2 || true
  die "ssh root@$NS_ADDR does not work"
}

start() {
  network
  engine
  ssh_setup
  DOCKER_HOST=ssh://root@$NS_ADDR timeout 30 "$HOST_DOCKER" version -f '{{.Server.Version}}' >/dev/null ||
    die "docker over ssh://root@$NS_ADDR does not answer"
  log "up: dockerd in namespace $NS at tcp://$NS_ADDR:2375 and ssh://root@$NS_ADDR"
  env_ "${1:-ssh}"
}

env_() {
  pid_alive $RUN/docker.pid || die "the engine in $NS is not running (netns.sh start)"
  if [ "${1:-ssh}" = tcp ]; then echo "export DOCKER_HOST=tcp://$NS_ADDR:2375"; else echo "export DOCKER_HOST=ssh://root@$NS_ADDR"; fi
}

stop() {
  stop_pid $RUN/sshd.pid
  stop_pid $RUN/docker.pid
  iptables -t nat -D POSTROUTING -s $SUBNET ! -o $HOST_IF -j MASQUERADE 2>/dev/null || true
  iptables -D FORWARD -i $HOST_IF -j ACCEPT 2>/dev/null || true
  iptables -D FORWARD -o $HOST_IF -j ACCEPT 2>/dev/null || true
  ip link del $HOST_IF 2>/dev/null || true
  [ -e /run/netns/$NS ] && ip netns del $NS
  return 0
}

case "${1:-}" in
  start) start "${2:-ssh}" ;;
  env) env_ "${2:-ssh}" ;;
  stop) stop ;;
  *) echo "usage: $0 start [ssh|tcp]|env [ssh|tcp]|stop" >&2; exit 2 ;;
esac
