#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for trying the SLURM profile on a laptop and for
# tests/test_slurm.py.  Debian/Ubuntu, root (or sudo), no systemd or cgroups needed.
#
#   scripts/slurm-local.sh up       install missing packages, start munge, a private MariaDB,
#                                   slurmdbd, slurmctld and slurmd (idempotent)
#   scripts/slurm-local.sh down     stop what `up` started (idempotent); keeps the state folder
#   scripts/slurm-local.sh purge    down, then delete the state folder
#   scripts/slurm-local.sh status   print what runs
#
# Everything lives in $SNAKETUNE_SLURM_DIR (default /var/tmp/snaketune-slurm): configs, spool,
# state, logs, pid files and the accounting database.  /etc/slurm/slurm.conf and
# /etc/slurm/slurmdbd.conf become symlinks into it (the executor plugin's job-step helper
# clears SLURM_CONF, so SLURM tools must find the config at the default place); an existing
# real /etc/slurm/slurm.conf (a real cluster's) is never touched: the script refuses instead.
# Fixed ports: slurmctld 6817, slurmd 6818, slurmdbd 6819, MariaDB 3307 (127.0.0.1 only), so
# there is one such cluster per machine.
set -euo pipefail

DIR=${SNAKETUNE_SLURM_DIR:-/var/tmp/snaketune-slurm}
CLUSTER=snaketune
ACCOUNT=snaketune
PARTITION=local
DB_PORT=3307
DB_PASS=snaketune-local-only
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
HOST=$(hostname -s)

log() { echo "slurm-local: $*" >&2; }
die() { log "$*"; exit 1; }

alive() { # alive PIDFILE: the pid in it runs
  [ -s "$1" ] && $SUDO kill -0 "$($SUDO cat "$1")" 2>/dev/null
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out after ${limit}s waiting for $what (logs in $DIR/log)"
}

install_packages() {
  local need=()
  command -v slurmctld >/dev/null || need+=(slurmctld)
  command -v slurmd >/dev/null || need+=(slurmd)
  command -v sbatch >/dev/null || need+=(slurm-client)
  command -v slurmdbd >/dev/null || need+=(slurmdbd)
  command -v munged >/dev/null || need+=(munge)
  command -v mariadbd >/dev/null || need+=(mariadb-server)
  [ ${#need[@]} = 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get to install them"
  log "installing ${need[*]}"
  # policy-rc.d keeps the packages' init scripts from starting system-wide daemons.
  local policy=/usr/sbin/policy-rc.d created=""
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null
    $SUDO chmod 755 $policy
    created=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$created" ] && $SUDO rm -f $policy
  return 0
}

link_config() { # link_config NAME: /etc/slurm/NAME -> $DIR/etc/NAME
  local target=/etc/slurm/$1
  if [ -e "$target" ] || [ -L "$target" ]; then
    if [ "$(readlink "$target" || true)" != "$DIR/etc/$1" ]; then
      die "$target exists and is not this script's; refusing to replace a real cluster's config"
    fi
    return 0
  fi
  $SUDO mkdir -p /etc/slurm
  $SUDO ln -s "$DIR/etc/$1" "$target"
}

write_configs() {
  local cpus mem
  cpus=$(nproc)
  # Leave the OS 10 % (slurmd drains a node whose RealMemory exceeds what it finds).
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  $SUDO mkdir -p "$DIR"/{etc,log,run,state,spool,mysql}
  $SUDO tee "$DIR/etc/slurm.conf" >/dev/null <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster without cgroups.
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MailProg=/bin/true
MinJobAge=3600
KillWait=5
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  $SUDO tee "$DIR/etc/slurmdbd.conf" >/dev/null <<EOF
# Written by scripts/slurm-local.sh: accounting for sacct (the executor plugin polls it).
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
EOF
  $SUDO chmod 600 "$DIR/etc/slurmdbd.conf"
  $SUDO chmod 644 "$DIR/etc/slurm.conf"
  link_config slurm.conf
  link_config slurmdbd.conf
}

start_munge() {
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return 0 # a munged (ours or the system's) already answers
  fi
  $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
  $SUDO chown munge:munge /run/munge /var/log/munge /var/lib/munge
  $SUDO chmod 755 /run/munge
  [ -s /etc/munge/munge.key ] || $SUDO runuser -u munge -- mungekey --create
  $SUDO runuser -u munge -- munged --force
  $SUDO touch "$DIR/run/munged.ours"
  wait_for 10 munged sh -c 'munge -n </dev/null | unmunge'
}

mysql_root() { $SUDO mariadb --no-defaults --socket="$DIR/mysql/mysqld.sock" -u root "$@"; }

start_mariadb() {
  alive "$DIR/mysql/mariadbd.pid" && return 0
  $SUDO chown mysql:mysql "$DIR/mysql"
  if [ ! -d "$DIR/mysql/data/mysql" ]; then
    $SUDO mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed, see $DIR/log/mariadb-install.log"
  fi
  # setsid + nohup: the server outlives this script and the caller's session.
  $SUDO setsid nohup mariadbd --no-defaults --user=mysql --datadir="$DIR/mysql/data" \
    --bind-address=127.0.0.1 --port=$DB_PORT --socket="$DIR/mysql/mysqld.sock" \
    --pid-file="$DIR/mysql/mariadbd.pid" --log-error="$DIR/mysql/mariadb.log" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
    </dev/null >/dev/null 2>&1 &
  wait_for 60 mariadbd mysql_root -e "select 1"
  mysql_root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
EOF
}

start_slurmdbd() {
  alive "$DIR/run/slurmdbd.pid" && return 0
  $SUDO env SLURM_CONF="$DIR/etc/slurm.conf" slurmdbd
  wait_for 60 slurmdbd sacctmgr -n list cluster
  if [ -z "$(sacctmgr -n -P list cluster "$CLUSTER" format=cluster)" ]; then
    $SUDO sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
  if [ -z "$(sacctmgr -n -P list account "$ACCOUNT" format=account)" ]; then
    $SUDO sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=snaketune Organization=snaketune >/dev/null
  fi
  local user
  user=${SUDO_USER:-$(id -un)}
  for u in root "$user"; do
    if [ -z "$(sacctmgr -n -P list assoc user="$u" account="$ACCOUNT" format=user)" ]; then
      $SUDO sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
    fi
  done
}

start_slurm() {
  if ! alive "$DIR/run/slurmctld.pid"; then
    $SUDO env SLURM_CONF="$DIR/etc/slurm.conf" slurmctld
    wait_for 30 slurmctld scontrol ping
  fi
  if ! alive "$DIR/run/slurmd.pid"; then
    $SUDO env SLURM_CONF="$DIR/etc/slurm.conf" slurmd
  fi
  wait_for 30 "node $HOST to register" sh -c "sinfo -h -N -o %T | grep -qvE '^(unknown|down|not_responding)'"
  # A node drained by an earlier run (e.g. killed daemons) comes back here.
  if sinfo -h -N -o %T | grep -qE 'drain|down'; then
    $SUDO scontrol update NodeName="$HOST" State=RESUME || true
  fi
  wait_for 30 "node $HOST idle" sh -c "sinfo -h -N -o %T | grep -qE '^(idle|mixed|allocated)'"
}

up() {
  install_packages
  write_configs
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  log "up: cluster '$CLUSTER', partition '$PARTITION', account '$ACCOUNT', $(nproc) CPUs on $HOST (state in $DIR)"
}

stop() { # stop PIDFILE: stop the daemon whose pid is in PIDFILE and wait for it
  local pidfile=$1 pid i
  alive "$pidfile" || { $SUDO rm -f "$pidfile"; return 0; }
  pid=$($SUDO cat "$pidfile")
  $SUDO kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    $SUDO kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if $SUDO kill -0 "$pid" 2>/dev/null; then
    log "$pidfile ($pid) ignored SIGTERM for 20 s; killing it"
    $SUDO kill -KILL "$pid" 2>/dev/null || true
  fi
  $SUDO rm -f "$pidfile"
}

down() {
  [ -d "$DIR" ] || return 0
  # Jobs first, so no slurmstepd outlives the daemons.
  if alive "$DIR/run/slurmctld.pid"; then
    local jobs i
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      $SUDO scancel --quiet $jobs 2>/dev/null || true
      for ((i = 0; i < 75; i++)); do
        [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
        sleep 0.2
      done
    fi
  fi
  stop "$DIR/run/slurmd.pid"
  stop "$DIR/run/slurmctld.pid"
  stop "$DIR/run/slurmdbd.pid"
  stop "$DIR/mysql/mariadbd.pid"
  if [ -e "$DIR/run/munged.ours" ]; then
    $SUDO runuser -u munge -- munged --stop >/dev/null 2>&1 || true
    $SUDO rm -f "$DIR/run/munged.ours"
  fi
  for name in slurm.conf slurmdbd.conf; do
    if [ "$(readlink "/etc/slurm/$name" || true)" = "$DIR/etc/$name" ]; then
      $SUDO rm -f "/etc/slurm/$name"
    fi
  done
  log "down"
}

status() {
  for pidfile in mysql/mariadbd run/slurmdbd run/slurmctld run/slurmd; do
    if alive "$DIR/$pidfile.pid"; then echo "${pidfile#*/}: running"; else echo "${pidfile#*/}: stopped"; fi
  done
  if alive "$DIR/run/slurmctld.pid"; then sinfo; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  purge) down; $SUDO rm -rf "$DIR"; log "purged $DIR" ;;
  status) status ;;
  *) echo "usage: $0 up|down|purge|status" >&2; exit 2 ;;
esac
