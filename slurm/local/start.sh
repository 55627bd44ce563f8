#!/usr/bin/env bash
# Start a real Slurm on this machine (for tests, CI and trying distill's Slurm executor): one node
# named after the host, or with DISTILL_SLURM_NODES=N, N nodes n1..nN, each its own slurmd.
#
#   sudo bash slurm/local/start.sh                        # idempotent: installs, configures, starts
#   sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh  # two nodes (multi-node training tests)
#   sudo bash slurm/local/stop.sh                         # stops only the daemons this script started
#
# Environment:
#   DISTILL_SLURM_NODES    number of nodes                    (default 1)
#   DISTILL_SLURM_DIR      state, spool, logs and pid files   (default /var/lib/distill-slurm)
#   DISTILL_SLURM_TIMEOUT  seconds to wait for an idle node   (default 60)
#   DISTILL_SLURM_FORCE=1  overwrite an /etc/slurm/slurm.conf this script did not write
#
# Works without systemd (daemons are started directly; their pids are recorded under
# $DISTILL_SLURM_DIR/run) and without cgroups (proctrack/linuxproc, task/none). No accounting
# database: job states come from `scontrol show job` (kept MinJobAge seconds after the end) and
# jobcomp/filetxt keeps a log of finished jobs.
set -euo pipefail

STATE_DIR=${DISTILL_SLURM_DIR:-/var/lib/distill-slurm}
TIMEOUT=${DISTILL_SLURM_TIMEOUT:-60}
CONF=/etc/slurm/slurm.conf
MARKER="# written by distill slurm/local/start.sh"
RUN=$STATE_DIR/run
LOG=$STATE_DIR/log
PACKAGES=(slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge)
NODES=${DISTILL_SLURM_NODES:-1}
[[ $NODES =~ ^[1-9][0-9]?$ ]] || { echo "slurm-local: error: DISTILL_SLURM_NODES=$NODES is not a node count" >&2; exit 1; }
HOSTS_MARKER="# distill slurm/local nodes"

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || die "must run as root (no sudo found)"
    exec sudo --preserve-env=DISTILL_SLURM_DIR,DISTILL_SLURM_TIMEOUT,DISTILL_SLURM_FORCE,DISTILL_SLURM_NODES bash "$0" "$@"
fi

# --- packages ---------------------------------------------------------------------------------
install_packages() {
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing ${PACKAGES[*]} (missing: ${missing[*]})"
    command -v apt-get >/dev/null || die "apt-get not found: install ${PACKAGES[*]} by hand"
    # Package scripts must not start daemons we then would not own: block service starts while
    # installing unless a policy already does (Docker-style images ship one that always says no).
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    local rc=0 log=$LOG/apt.log
    install -d "$LOG"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get -o DPkg::Lock::Timeout=300 update -q &&
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${PACKAGES[@]}"
    } >"$log" 2>&1 || rc=$?
    ((added_policy)) && rm -f "$policy"
    ((rc == 0)) || { tail -n 20 "$log" >&2; die "apt-get install ${PACKAGES[*]} failed (exit $rc; log: $log)"; }
}

# --- munge ------------------------------------------------------------------------------------
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    local key=/etc/munge/munge.key
    if [[ ! -s $key ]]; then
        say "writing munge key $key"
        install -d -o munge -g munge -m 0700 /etc/munge
        dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$key" && chmod 0400 "$key"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    if munge_works; then return 0; fi   # ours (pid recorded) or the system's: use it either way
    rm -f /run/munge/munged.pid
    runuser -u munge -- munged || die "munged failed to start; see /var/log/munge/munged.log"
    cp /run/munge/munged.pid "$RUN/munged.pid"
    for _ in $(seq 50); do munge_works && return 0; sleep 0.1; done
    die "munged started but munge -n | unmunge fails; see /var/log/munge/munged.log"
}

# --- config -----------------------------------------------------------------------------------
node_names() {
    if ((NODES == 1)); then hostname -s; else for i in $(seq "$NODES"); do echo "n$i"; done; fi
}

node_lines() {   # one node: the host itself; several: n1..nN on loopback, each slurmd on its own port
    local host=$1 cpus=$2 real_mb=$3 i
    if ((NODES == 1)); then
        echo "NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${real_mb} State=UNKNOWN"
        return
    fi
    # Every node claims all the host's CPUs (so a job may ask for them on each node) and its share
    # of the memory; the nodes run on the same cores, which is fine for tests.
    for i in $(seq "$NODES"); do
        echo "NodeName=n$i NodeHostname=${host} NodeAddr=127.0.0.1 Port=$((7817 + i)) CPUs=${cpus} RealMemory=$((real_mb / NODES / 256 * 256)) State=UNKNOWN"
    done
}

write_hosts() {   # node names must resolve: the first node's name is the rendezvous address
    ((NODES == 1)) && return 0
    local line
    line="127.0.0.1 $(node_names | xargs) $HOSTS_MARKER"
    grep -qxF "$line" /etc/hosts && return 0
    # /etc/hosts may be a bind mount (containers): rewrite it in place, never replace the file
    local kept
    kept=$(grep -vF "$HOSTS_MARKER" /etc/hosts || true)
    printf '%s\n%s\n' "$kept" "$line" >/etc/hosts
}

write_config() {   # prints "changed" when the config on disk was (re)written
    local host cpus mem_mb real_mb def_mem tmp
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    # Leave room for the OS and the daemons: slurmd drains a node whose RealMemory exceeds what it finds.
    real_mb=$((mem_mb - (mem_mb / 20 > 512 ? mem_mb / 20 : 512)))
    real_mb=$((real_mb / 256 * 256))   # so small drifts of MemTotal do not rewrite the config
    def_mem=$((real_mb / cpus < 1024 ? real_mb / cpus : 1024))
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
$MARKER (rewritten on every start)
ClusterName=distill-local
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Requeued jobs may run again only once the old job credential expires (default 120 s).
AuthInfo=cred_expire=10
StateSaveLocation=$STATE_DIR/ctld
# %n: each slurmd (node) of a multi-node setup on this one host keeps its own spool, pid and log.
SlurmdSpoolDir=$STATE_DIR/slurmd-%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd-%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd-%n.log
# No cgroups needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
SchedulerType=sched/backfill
# Without these, each back-to-back job waits ~3 s for a scheduler tick.
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=2
# Reject impossible requests (more CPUs than exist) at submit instead of pending forever.
EnforcePartLimits=ALL
# Declared though no node has GPUs, so --gres=gpu:N fails like on a real GPU-less partition.
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
# Finished jobs stay visible to "scontrol show job" this long (s).
MinJobAge=3600
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
KillWait=10
InactiveLimit=0
$(node_lines "$host" "$cpus" "$real_mb")
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -f $CONF ]] && ! grep -qF "$MARKER" "$CONF" && [[ ${DISTILL_SLURM_FORCE:-0} != 1 ]]; then
        rm -f "$tmp"
        die "$CONF was not written by this script; set DISTILL_SLURM_FORCE=1 to replace it"
    fi
    install -d /etc/slurm
    if [[ -f $CONF ]] && cmp -s "$tmp" "$CONF"; then rm -f "$tmp"; return 0; fi
    if [[ -f $CONF ]]; then diff "$CONF" "$tmp" | grep '^[<>]' | sed 's/^/slurm-local: config /' >&2 || true; fi
    chmod 644 "$tmp" && mv "$tmp" "$CONF"
    echo changed
}

# --- daemons ----------------------------------------------------------------------------------
# A daemon is ours when its recorded pid is alive and runs that program (pid file $RUN/$2.pid).
ours() { local f=$RUN/${2:-$1}.pid; [[ -s $f ]] && [[ $(cat "/proc/$(cat "$f")/comm" 2>/dev/null) == "$1" ]]; }
any_slurmd_ours() { local n; for n in $(node_names); do ours slurmd "slurmd-$n" && return 0; done; return 1; }

check_foreign() {
    local name=$1 pids
    pids=$(grep -lx "$name" /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3 | xargs || true)
    if [[ -n $pids ]] && ! { ours "$name" || { [[ $name == slurmd ]] && any_slurmd_ours; }; }; then
        die "a $name not started by this script is running (pid $pids); stop it first"
    fi
}

wait_ctld() {
    for _ in $(seq $((TIMEOUT * 10))); do scontrol ping 2>/dev/null | grep -q UP && return 0; sleep 0.1; done
    die "slurmctld did not answer within ${TIMEOUT}s; see $LOG/slurmctld.log"
}

node_state() { sinfo -h -N -n "$1" -o %T 2>/dev/null | head -n1; }

wait_idle() {
    local node=$1 state="" resumed=0
    for _ in $(seq $((TIMEOUT * 10))); do
        state=$(node_state "$node")
        case $state in
            idle | mixed | allocated | completing) return 0 ;;
            drained | draining | down)
                # Left over from an earlier run (e.g. a config that asked for more memory).
                ((resumed)) || scontrol update NodeName="$node" State=RESUME 2>/dev/null || true
                resumed=1 ;;
        esac
        sleep 0.1
    done
    die "node $node not idle after ${TIMEOUT}s (state: ${state:-none}); see $LOG/slurmd-$node.log"
}

main() {
    local t0=$SECONDS changed node
    install_packages
    install -d -m 0755 "$STATE_DIR" "$RUN" "$LOG" "$STATE_DIR/ctld"
    for node in $(node_names); do install -d -m 0755 "$STATE_DIR/slurmd-$node"; done
    check_foreign slurmctld
    check_foreign slurmd
    start_munge
    write_hosts
    changed=$(write_config)
    if [[ -n $changed ]] && { ours slurmctld || ls "$RUN"/slurmd*.pid >/dev/null 2>&1; }; then
        say "config changed: restarting the daemons"
        bash "$(dirname "$0")/stop.sh" --keep-munge
    fi
    if ! ours slurmctld; then
        slurmctld || die "slurmctld failed to start; see $LOG/slurmctld.log"
        wait_ctld
    fi
    for node in $(node_names); do
        ours slurmd "slurmd-$node" || slurmd -N "$node" || die "slurmd -N $node failed to start; see $LOG/slurmd-$node.log"
    done
    for node in $(node_names); do wait_idle "$node"; done
    say "ready in $((SECONDS - t0))s: $(sinfo -h -o '%P %D nodes %c cpus %m MB %T')"
    say "state and logs: $STATE_DIR (stop with: bash $(dirname "$0")/stop.sh)"
}

main "$@"
