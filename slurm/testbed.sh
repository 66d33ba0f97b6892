#!/usr/bin/env bash
# A real single-node Slurm on localhost (slurmctld + slurmd + munged) with every file in one
# scratch folder: the test cluster of the Slurm tests and of the scripts in this folder.
#
#   slurm/testbed.sh up   DIR [CPUS]   start the daemons (idempotent); prints the SLURM_CONF line
#   slurm/testbed.sh down DIR          stop them
#   slurm/testbed.sh env  DIR          print `export SLURM_CONF=...` for the shell
#
# Needs root (slurmd starts jobs as their user) and Debian's slurm-wlm and munge packages
# (`make slurm-deps`). The node advertises CPUS cores (default 8, more than most test machines
# have, so that a few one-core worker jobs and an srun of four tasks fit beside each other).
set -euo pipefail

usage() { echo "usage: $0 up|down|env DIR [CPUS]" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
cpus=${3:-8}
conf=$dir/slurm.conf

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {
  for daemon in slurmd slurmctld munged; do
    if pid_alive "$dir/$daemon.pid"; then
      kill "$(cat "$dir/$daemon.pid")" 2>/dev/null || true
      for _ in $(seq 50); do pid_alive "$dir/$daemon.pid" || break; sleep 0.1; done
    fi
    rm -f "$dir/$daemon.pid"
  done
}

write_conf() {
  cat >"$conf" <<EOF
ClusterName=watergee-testbed
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$((6817 + offset))
SlurmdPort=$((6818 + offset))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=16000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  # one GPU as Slurm counts it, without a device: --gres=gpu:1 jobs are scheduled and
  # accounted as on a GPU node (nothing here runs CUDA)
  printf "AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null\n" >"$dir/gres.conf"
}

start() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null || {
    echo "$0: slurmctld or munged not found (make slurm-deps installs slurm-wlm and munge)" >&2
    exit 3
  }
  [ "$(id -u)" = 0 ] || { echo "$0: the test Slurm needs root (slurmd runs jobs as their user)" >&2; exit 3; }
  if pid_alive "$dir/slurmctld.pid" && pid_alive "$dir/slurmd.pid" && pid_alive "$dir/munged.pid"; then
    echo "export SLURM_CONF=$conf"
    return
  fi
  stop
  # the key is secret (0700 folder); the socket folder is open, so that other users (a test
  # suite run as yourself after `sudo slurm/testbed.sh up`) can submit jobs
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge" "$dir/munge-key"
  chmod 0700 "$dir/munge-key"
  chmod 0755 "$dir" "$dir/munge"
  [ -s "$dir/munge-key/munge.key" ] || head -c 1024 /dev/urandom >"$dir/munge-key/munge.key"
  chmod 0600 "$dir/munge-key/munge.key"
  # one port pair per folder, so that two testbeds (two checkouts) never share daemons
  offset=$(( $(printf '%s' "$dir" | cksum | cut -d' ' -f1) % 500 * 2 + 100 ))
  write_conf
  munged --force --key-file="$dir/munge-key/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge-key/seed"
  export SLURM_CONF=$conf
  slurmctld -f "$conf"
  slurmd -f "$conf" -N localhost
  for _ in $(seq 100); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    case $state in idle*|mixed*|allocated*) echo "export SLURM_CONF=$conf"; return ;; esac
    sleep 0.2
  done
  echo "$0: Slurm did not come up in 20 s (node state '${state:-none}'); see $dir/log" >&2
  exit 1
}

case $action in
  up) start ;;
  down) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) usage ;;
esac
