#!/usr/bin/env bash
# Bring up a single-node SLURM on this machine for the cluster test (tests/cluster/test_slurm.py).
#
#   sudo bash tests/cluster/slurm_up.sh        # then: MUSTSURV_SLURM=1 pytest tests/cluster
#   sudo bash tests/cluster/slurm_down.sh      # stops exactly the daemons this script started
#
# What it does (Debian/Ubuntu, as root, no systemd needed):
#   - installs munge, slurmctld, slurmd and slurm-client (--no-install-recommends) when missing;
#   - writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf for `localhost` (the default path is
#     required: the `srun` inside each job does not see SLURM_CONF), with state, spool, logs and pid
#     files under $MUSTSURV_SLURM_DIR (default /tmp/mustsurv-slurm);
#   - advertises one fake GPU (gres `gpu`, backed by an empty placeholder file) so that jobs asking
#     for `--gpus=1` are scheduled; there is no device behind it, jobs see no CUDA device and torch
#     runs on the CPU;
#   - no accounting database: status is polled with `squeue` (the profile's slurm-status-command);
#   - starts munged (unless one already answers), `slurmctld -c` (fresh state) and `slurmd`, then
#     waits (bounded) until `sinfo` shows the node idle and a one-task job with a GPU runs.
# It refuses to touch an existing slurm.conf that it did not write.
set -euo pipefail

DIR=${MUSTSURV_SLURM_DIR:-/tmp/mustsurv-slurm}
MARKER="# written by mustsurv tests/cluster/slurm_up.sh"
WAIT_S=${MUSTSURV_SLURM_WAIT:-60}

die() { echo "slurm_up: $*" >&2; exit 1; }
alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "run as root (it installs packages and writes /etc/slurm/slurm.conf)"

for f in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
    if [[ -e $f ]] && ! grep -qxF "$MARKER" "$f"; then
        die "$f exists and was not written by this script; refusing to replace a real SLURM configuration"
    fi
done
if alive "$DIR/run/slurmctld.pid" || alive "$DIR/run/slurmd.pid"; then
    die "SLURM from $DIR is already running; stop it first with tests/cluster/slurm_down.sh"
fi

# --- packages --------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(munge slurmctld slurmd slurm-client)
    if ! timeout 600 apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        timeout 300 apt-get update
        timeout 600 apt-get install -y --no-install-recommends "${pkgs[@]}"
    fi
fi

# --- state directory -------------------------------------------------------------------------------
if [[ -e $DIR && ! -e $DIR/.mustsurv-slurm ]] && [[ -n $(ls -A "$DIR") ]]; then
    die "$DIR exists and is not a state directory of this script; set MUSTSURV_SLURM_DIR to a new path"
fi
rm -rf "$DIR"
mkdir -p "$DIR"/{state,spool,log,run,munge}
: >"$DIR/.mustsurv-slurm"
chmod 755 "$DIR"
chown munge:munge "$DIR/munge"
chmod 700 "$DIR/munge"
: >"$DIR/fake-gpu0"   # the gres File= of the fake GPU: any existing path; nothing opens it

# --- munge -----------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then
        runuser -u munge -- mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
        chown munge:munge /etc/munge/munge.key
    fi
    chmod 400 /etc/munge/munge.key
fi
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "slurm_up: using the munged that is already running (it will be left running)"
else
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.2
    done
    munge -n | unmunge >/dev/null || die "munged did not start; see $DIR/munge/munged.log"
    cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"   # slurm_down.sh stops it because we started it
fi

# --- configuration ---------------------------------------------------------------------------------
# The node line comes from `slurmd -C` (CPUs, sockets, cores, threads), renamed to localhost, with the
# memory reduced by a headroom: a node that reports less memory than configured is drained.
node=$(slurmd -C | head -n 1)
[[ $node == NodeName=* ]] || die "unexpected output of 'slurmd -C': $node"
total_mb=$(free -m | awk '/^Mem:/ {print $2}')
real_mb=$((total_mb - total_mb / 10))
node=$(sed -E -e "s/^NodeName=[^ ]+/NodeName=localhost NodeAddr=127.0.0.1/" \
    -e "s/RealMemory=[0-9]+/RealMemory=${real_mb}/" <<<"$node")
cpus=$(sed -E 's/.*CPUs=([0-9]+).*/\1/' <<<"$node")
mkdir -p /etc/slurm
cat >/etc/slurm/slurm.conf <<EOF
$MARKER
# Single-node test cluster; state under $DIR. Remove with tests/cluster/slurm_down.sh.
ClusterName=mustsurv
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
GresTypes=gpu
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
$node Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
cat >/etc/slurm/gres.conf <<EOF
$MARKER
AutoDetect=off
NodeName=localhost Name=gpu File=$DIR/fake-gpu0
EOF

# --- daemons ---------------------------------------------------------------------------------------
slurmctld -c
for _ in $(seq 50); do
    alive "$DIR/run/slurmctld.pid" && timeout 5 scontrol ping >/dev/null 2>&1 && break
    sleep 0.2
done
if ! timeout 5 scontrol ping >/dev/null 2>&1; then
    tail -n 20 "$DIR/log/slurmctld.log" >&2 || true
    die "slurmctld did not start; stop what did start with tests/cluster/slurm_down.sh"
fi
slurmd -N localhost

state=""
deadline=$((SECONDS + WAIT_S))
while ((SECONDS < deadline)); do
    state=$(timeout 5 sinfo -h -N -n localhost -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    sleep 1
done
if [[ $state != idle ]]; then
    echo "slurm_up: node state after ${WAIT_S}s: '${state}'" >&2
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "the node did not become idle; stop with tests/cluster/slurm_down.sh"
fi

# A job step end to end (srun inside an allocation, with the fake GPU), as the executor runs them.
if ! timeout 60 srun --gpus=1 -n 1 --mem=100 --time=1 true; then
    tail -n 20 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
    die "a one-task job with --gpus=1 did not run"
fi
echo "slurm_up: node localhost idle (CPUs=$cpus, RealMemory=${real_mb} MB, 1 fake GPU); state in $DIR"
