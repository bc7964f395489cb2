#!/bin/bash
# A one-node Slurm cluster on this machine, for the cluster tests (tests/execution/test_cluster.py) and for trying
# the scripts in scripts/slurm/ by hand:
#
#   scripts/ci/cluster.sh start DIR    # install slurm-wlm and munge if missing, start munged, slurmctld
#                                      # and slurmd, wait until the node is idle; prints SLURM_CONF=...
#   export SLURM_CONF=DIR/slurm.conf   # then sbatch, squeue, scancel, scontrol talk to this cluster
#   scripts/ci/cluster.sh stop DIR     # stop the daemons started into DIR, by their pids
#
# Everything lives in DIR (config, munge key and socket, state, spool, logs, pid files); the daemons listen
# on 127.0.0.1 only, on free ports, and are started directly (no systemd), so nothing of the machine's own
# Slurm or munge is touched. The node has CPUS cpus (default 2) and no GPUs.
# Exit codes of start: 0 ready, 3 Slurm cannot run here (the reason on stderr: not root, no apt-get, the
# package index unreachable), 1 a daemon did not come up (its log on stderr).
set -euo pipefail

CPUS=${CPUS:-2}
START_TIMEOUT=${START_TIMEOUT:-60}  # seconds for the node to become idle

cannot() { echo "cluster.sh: $*" >&2; exit 3; }
fail() { echo "cluster.sh: $*" >&2; exit 1; }

install_slurm() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return 0
    ((EUID == 0)) || cannot "slurm-wlm and munge are not installed, and installing them needs root"
    command -v apt-get >/dev/null || cannot "slurm-wlm and munge are not installed, and there is no apt-get"
    echo "cluster.sh: installing slurm-wlm and munge" >&2
    # The packages' own services cannot start without systemd; that is expected, and not needed here.
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge; } >"$DIR/apt.log" 2>&1; then
        cannot "installing slurm-wlm and munge failed (see $DIR/apt.log): $(tail -n 1 "$DIR/apt.log")"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_daemon() {  # $1: name (pid file DIR/$1.pid, log DIR/$1.out); the rest: the command, in the foreground
    local name=$1
    shift
    setsid "$@" </dev/null >"$DIR/$name.out" 2>&1 &
    echo $! >"$DIR/$name.pid"
}

write_config() {
    local node ctld_port slurmd_port
    node=$(hostname -s)
    ctld_port=$(free_port)
    slurmd_port=$(free_port)
    mkdir -p "$DIR/state" "$DIR/spool"
    cat >"$DIR/slurm.conf" <<CONF
ClusterName=afos-ci
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$DIR/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pidfile
SlurmdPidFile=$DIR/slurmd.pidfile
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=600
NodeName=$node NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    install_slurm
    write_config
    export SLURM_CONF=$DIR/slurm.conf
    dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
    chmod 600 "$DIR/munge.key"
    # --force: munged refuses to run as root, or with a key outside /etc/munge, without it.
    start_daemon munged munged --foreground --force --key-file="$DIR/munge.key" --socket="$DIR/munge.socket" \
        --pid-file="$DIR/munged.pidfile" --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed"
    start_daemon slurmctld slurmctld -D -i -f "$DIR/slurm.conf"
    start_daemon slurmd slurmd -D -f "$DIR/slurm.conf" -N "$(hostname -s)"
    local deadline=$((SECONDS + START_TIMEOUT)) state=""
    while ((SECONDS < deadline)); do
        state=$(sinfo --noheader --format=%T 2>/dev/null || true)
        [[ $state == idle ]] && { echo "SLURM_CONF=$SLURM_CONF"; return 0; }
        for name in munged slurmctld slurmd; do
            kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || { stop; fail "$name exited: $(tail -n 5 "$DIR/$name.out" "$DIR/$name.log" 2>/dev/null)"; }
        done
        sleep 1
    done
    stop
    fail "the node did not become idle within ${START_TIMEOUT}s (state: ${state:-none}); see $DIR/*.log"
}

stop() {  # the daemons in the reverse order of their start, each by its pid; waits until each is gone
    local name pid
    for name in slurmd slurmctld munged; do
        [[ -f $DIR/$name.pid ]] || continue
        pid=$(cat "$DIR/$name.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$DIR/$name.pid"
    done
}

[[ $# == 2 && ($1 == start || $1 == stop) ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
DIR=$2
"$1"
