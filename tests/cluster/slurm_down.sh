#!/usr/bin/env bash
# Tear down the single-node SLURM that tests/cluster/slurm_up.sh brought up.
#
# Cancels the jobs still queued on that cluster, stops exactly the daemons slurm_up.sh started (by the
# pid files under $MUSTSURV_SLURM_DIR, default /tmp/mustsurv-slurm; a munged that was already running
# is left alone), removes the slurm.conf / gres.conf it wrote, and the state directory (kept when
# MUSTSURV_SLURM_KEEP=1, e.g. to read the logs). Every wait is bounded; safe to run twice.
set -uo pipefail

DIR=${MUSTSURV_SLURM_DIR:-/tmp/mustsurv-slurm}
MARKER="# written by mustsurv tests/cluster/slurm_up.sh"

ours() { [[ -f $1 ]] && grep -qxF "$MARKER" "$1"; }

# Stop the process in pid file $1 if it is still the program $2; TERM, then KILL after 15 s.
stop() {
    local pidfile=$1 name=$2 pid
    [[ -s $pidfile ]] || return 0
    pid=$(cat "$pidfile")
    if ! kill -0 "$pid" 2>/dev/null; then return 0; fi
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
        echo "slurm_down: pid $pid in $pidfile is not $name any more; left alone" >&2
        return 0
    fi
    kill -TERM "$pid"
    for _ in $(seq 75); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    echo "slurm_down: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

if ours /etc/slurm/slurm.conf && [[ -s $DIR/run/slurmctld.pid ]] && kill -0 "$(cat "$DIR/run/slurmctld.pid")" 2>/dev/null; then
    timeout 10 scancel --partition=debug 2>/dev/null || true
    for _ in $(seq 30); do
        [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
        sleep 1
    done
fi

stop "$DIR/run/slurmd.pid" slurmd
stop "$DIR/run/slurmctld.pid" slurmctld
stop "$DIR/run/munged.pid" munged

for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if ours "$f"; then rm -f "$f"; fi
done
if [[ ${MUSTSURV_SLURM_KEEP:-0} != 1 && -e $DIR/.mustsurv-slurm ]]; then
    rm -rf "$DIR"
fi
echo "slurm_down: done"
