#!/usr/bin/env bash
# Kamailio as a plain digest registrar under the same SIPp load method as load_register.sh,
# for the side-by-side figure the issue asks for:
#
#   examples/sipp/load_register_kamailio.sh RATE [CALLS] [CHILDREN]
#
# Starts /usr/sbin/kamailio (KAMAILIO=...) with examples/kamailio/registrar.cfg on
# 127.0.0.1:5160 (PORT=...), CHILDREN UDP workers (default 2 = the cores of this machine), runs
# SIPp with load_register_digest.xml (one call = REGISTER, 401, REGISTER with credentials, 200;
# CALLS distinct users left registered), prints attempted/successful/failed calls, the rate, the
# CPU time all Kamailio processes used during the run (user+system, so the CPU per
# registration) and their RSS growth (PSS would be fairer for the shared memory pool; RSS
# counts each touched page once per process). With MEM=1 Kamailio also opens its RPC control
# socket and the script reads `kamcmd core.shmmem` (real_used: the shared memory pool where
# usrloc keeps the bindings) and usrloc's location_contacts (bindings) before and after the run: the
# memory per binding as Kamailio itself accounts it (KAM_OPTS="-x tlsf" picks another memory
# manager than the default). Only the processes this script starts are
# stopped.
set -euo pipefail
rate=${1:?usage: load_register_kamailio.sh RATE [CALLS] [CHILDREN]}
calls=${2:-3000}
children=${3:-2}
port=${PORT:-5160}
sipp_port=${SIPP_PORT:-5190}
kam=${KAMAILIO:-/usr/sbin/kamailio}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
kpid=
cleanup() {
  if [ -n "$kpid" ]; then
    kill -TERM -- "-$kpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$kpid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
{
  echo SEQUENTIAL
  for i in $(seq 1 "$calls"); do u=$(printf "user%08d" "$i"); echo "$u;[authentication username=$u password=secret];"; done
} > "$work/users.csv"
ctl_args=()
if [ "${MEM:-0}" = 1 ]; then ctl_args=(-A WITH_CTL -A "CTL_SOCKET=\"unix:$work/ctl\""); fi
setsid "$kam" -f "$here/../kamailio/registrar.cfg" -DD -E -m "${SHM_MB:-256}" -M 8 -Y "$work" -w "$work" \
  -l "udp:127.0.0.1:$port" -A "CHILDREN=$children" "${ctl_args[@]}" ${KAM_OPTS:-} > "$work/kamailio.log" 2>&1 &
kpid=$!
for _ in $(seq 1 100); do
  grep -q "udp:127.0.0.1:$port" "$work/kamailio.log" 2>/dev/null && ss -lun | grep -q ":$port " && break
  kill -0 "$kpid" 2>/dev/null || { cat "$work/kamailio.log"; exit 1; }
  sleep 0.1
done
sleep 1
pids() { pgrep -g "$kpid" || true; }
cpu() { for p in $(pids); do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }
rss() { for p in $(pids); do awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null; done | awk '{ s += $1 } END { print s + 0 }'; }
rss0=$(rss)
shm() { kamcmd -s "unix:$work/ctl" core.shmmem | awk '$1 == "real_used:" { print $2 }'; }
users() { kamcmd -s "unix:$work/ctl" stats.get_statistics location_contacts | awk -F'= ' '{ print $2 + 0 }'; }
if [ "${MEM:-0}" = 1 ]; then shm0=$(shm); users0=$(users); echo "kamailio shm real_used ${shm0} B, ${users0} bindings"; fi
echo "kamailio pid $kpid ($(pids | wc -l) processes, $children UDP workers), RSS ${rss0} KiB"
cd "$work"
cpu0=$(cpu)
sipp "127.0.0.1:$port" -sf "$here/load_register_digest.xml" -inf users.csv -i 127.0.0.1 -p "$sipp_port" \
  -r "$rate" -m "$calls" -nostdin -trace_err -trace_stat -fd 1 ${SIPP_OPTS:-} >/dev/null 2>&1 || true
cpu1=$(cpu)
name=load_register_digest
tail -n 1 "${name}"_*_.csv | awk -F';' -v h="$(head -n 1 "${name}"_*_.csv)" '
  BEGIN { n = split(h, names, ";") }
  { for (i = 1; i <= n; i++) v[names[i]] = $i }
  END {
    # StartTime/CurrentTime are "date<TAB>time<TAB>epoch.µs": ElapsedTime(C) is whole seconds only
    split(v["StartTime"], s0, "\t"); split(v["CurrentTime"], s1, "\t"); secs = s1[3] - s0[3]
    printf "attempted %s, successful %s, failed %s, elapsed %.1f s, %.0f registrations/s\n",
      v["TotalCallCreated"], v["SuccessfulCall(C)"], v["FailedCall(C)"], secs, v["SuccessfulCall(C)"] / secs
  }'
awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$calls" \
  'BEGIN { printf "kamailio CPU time during the run: %.2f s (user+system) = %.3f ms per registration\n", t / hz, 1000 * t / hz / n }'
rss1=$(rss)
echo "kamailio RSS ${rss1} KiB after (+$((rss1 - rss0)) KiB, $(awk -v a="$rss0" -v b="$rss1" -v u="$calls" 'BEGIN { printf "%.3f", (b - a) / u }') KiB per registered user)"
if [ "${MEM:-0}" = 1 ]; then
  shm1=$(shm); users1=$(users)
  echo "kamailio shm real_used ${shm1} B, ${users1} bindings after"
  awk -v a="$shm0" -v b="$shm1" -v u0="$users0" -v u1="$users1" \
    'BEGIN { printf "%.3f KiB of shared memory per binding (%d bindings)\n", (b - a) / 1024 / (u1 - u0), u1 - u0 }'
fi
if [ -s "${name}"_*_errors.log ]; then echo "SIPp errors (first lines):"; head -n 5 "${name}"_*_errors.log; fi
