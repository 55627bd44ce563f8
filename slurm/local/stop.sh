#!/usr/bin/env bash
# Stop the Slurm (one node or several) that slurm/local/start.sh started: only the daemons whose pids it
# recorded under $DISTILL_SLURM_DIR/run (default /var/lib/distill-slurm/run). State is kept, so a
# later start.sh recovers queued and finished jobs.
#
#   sudo bash slurm/local/stop.sh [--keep-munge]
set -euo pipefail

STATE_DIR=${DISTILL_SLURM_DIR:-/var/lib/distill-slurm}
RUN=$STATE_DIR/run
KEEP_MUNGE=0
[[ ${1:-} == --keep-munge ]] && KEEP_MUNGE=1

if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "slurm-local: error: must run as root" >&2; exit 1; }
    exec sudo --preserve-env=DISTILL_SLURM_DIR bash "$0" "$@"
fi

stop_one() {   # stop_one PIDFILE_NAME [PROGRAM]
    local name=${2:-$1} f=$RUN/$1.pid pid
    [[ -s $f ]] || return 0
    pid=$(cat "$f")
    # A recycled pid may now belong to another program: only signal it if it still runs $name.
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then rm -f "$f"; return 0; fi
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-local: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
        kill -KILL "$pid"
    fi
    rm -f "$f"
    echo "slurm-local: stopped $name (pid $pid)"
}

for f in "$RUN"/slurmd*.pid; do   # one per node (slurmd-<node>.pid); slurmd.pid from older versions
    [[ -e $f ]] && NAME=$(basename "$f" .pid) && stop_one "$NAME" slurmd
done
stop_one slurmctld
((KEEP_MUNGE)) || stop_one munged
