#!/usr/bin/env bash
# Registration load against the all-in-one core (`cargo build --release --example cscf`).
#
#   examples/sipp/load_register.sh RATE [CALLS] [USERS]
#
# SIPp runs CALLS register + de-register cycles at RATE per second over USERS subscribers (each
# cycle = two full IMS-AKA procedures with UAR, MAR and SAR), then prints attempted, successful
# and failed calls, the elapsed time and the rate of full registrations per second.
#
# Two ways to run it:
# - CSCF=target/release/examples/cscf (recommended): the script writes its own configuration
#   with the USERS subscribers in it (ports BASE/+2/+4/+5, Diameter BASE+808/+809, IM server
#   BASE+10, SIPp BASE+30; BASE=5060 by default), starts the core, runs SIPp and stops the
#   core. With IM=0 the configuration has no iFC (no third-party REGISTER to the IM server per
#   registration). With KEEP=1 each call is one registration only (load_register_only.xml,
#   users stay registered) and the script reports the core's RSS before and after: the memory
#   per registered user. The roles hand SIP datagrams to each other in memory
#   (`in_process = true`); INPROC=0 sends every hop through the loopback sockets instead.
# - otherwise it drives a core already running on PCSCF (default 127.0.0.1:5060) and adds the
#   USERS subscribers through its HSS admin on ADMIN (default 127.0.0.1:5080), one curl each.
set -euo pipefail
rate=${1:?usage: load_register.sh RATE [CALLS] [USERS]}
calls=${2:-3000}
users=${3:-3000}
pcscf=${PCSCF:-127.0.0.1:5060}
admin=${ADMIN:-127.0.0.1:5080}
base=${BASE:-5060}
sipp_port=${SIPP_PORT:-$((base + 30))}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
# shellcheck source=load_lib.sh
. "$here/load_lib.sh"
cleanup() {
  load_stop_core
  rm -rf "$work"
}
trap cleanup EXIT
scenario=$here/ims_register_aka_load.xml
[ "${KEEP:-0}" = 1 ] && scenario=$here/load_register_only.xml

{
  echo SEQUENTIAL
  for i in $(seq 1 "$users"); do
    id=$(printf "0010100%08d" "$i")
    echo "$id;[authentication username=$id@ims.example.org aka_K=ims-rs-demo-K-01 aka_OP=ims-rs-demo-OP-1 aka_AMF=AM];"
  done
} > "$work/users.csv"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

if [ -n "${CSCF:-}" ]; then
  pcscf=127.0.0.1:$base
  {
    cat <<EOF
domain = "ims.example.org"
ip = "127.0.0.1"
in_process = $([ "${INPROC:-1}" = 1 ] && echo true || echo false)
[ports]
pcscf = $base
icscf = $((base + 2))
scscf_term = $((base + 4))
scscf_orig = $((base + 5))
[hss]
listen = "127.0.0.1:$((base + 808))"
[pcrf]
listen = "127.0.0.1:$((base + 809))"
[registrar]
min_expires = 60
max_expires = 600000
default_expires = 3600
[enum]
default = "!^\\\\+(.*)\$!sip:+\\\\1@ims.example.org!"
EOF
    if [ "${IM:-1}" = 1 ]; then
      # the demo's iFC (third-party REGISTER, IM, SMS) and IM server, on port BASE+10
      awk '/^\[\[ifc\]\]/ { on = 1 } /^\[enum\]/ { on = 0 } on' "$here/../cscf/ims.toml" \
        | sed -e "s/127\\.0\\.0\\.1:7070/127.0.0.1:$((base + 10))/; s/^port = 7070/port = $((base + 10))/; s/^msrp_port = 7073/msrp_port = $((base + 13))/; s/^store = .*//"
    fi
    seq 1 "$users" | subscribers_toml
  } > "$work/load.toml"
  load_start_core "$work/load.toml"
  sleep 1
  rss0=$(rss_kib "$core_pid")
  echo "core pid $core_pid, $users subscribers provisioned, RSS ${rss0} KiB"
else
  for i in $(seq 1 "$users"); do
    id=$(printf "0010100%08d" "$i")
    curl -sf -o /dev/null -d "{\"impi\":\"$id@ims.example.org\",\"impus\":[\"sip:$id@ims.example.org\"],\"k\":\"$k\",\"op\":\"$op\",\"amf\":\"414d\"}" \
      "http://$admin/subscribers"
  done
fi

cd "$work"
name=$(basename "$scenario" .xml)
perf_pid=
if [ -n "${PERF_OUT:-}" ] && [ -n "$core_pid" ]; then
  # profile the core while SIPp runs (perf record -g, user space)
  perf record -e "${PERF_EVENT:-cpu-clock}" ${PERF_FREQ:--F 499} ${PERF_G:--g} -p "$core_pid" -o "$PERF_OUT" >/dev/null 2>&1 &
  perf_pid=$!
fi
cpu0=$([ -n "$core_pid" ] && awk '{ print $14 + $15 }' "/proc/$core_pid/stat" || echo 0)
sipp "$pcscf" -sf "$scenario" -inf users.csv -i 127.0.0.1 -p "$sipp_port" \
  -r "$rate" -m "$calls" -nostdin -trace_err -trace_stat -fd 1 ${SIPP_OPTS:-} >/dev/null 2>&1 || true
tail -n 1 "${name}"_*_.csv | awk -F';' -v h="$(head -n 1 "${name}"_*_.csv)" -v per="$([ "${KEEP:-0}" = 1 ] && echo 1 || echo 2)" '
  BEGIN { n = split(h, names, ";") }
  { for (i = 1; i <= n; i++) v[names[i]] = $i }
  END {
    # StartTime/CurrentTime are "date<TAB>time<TAB>epoch.µs": ElapsedTime(C) is whole seconds only
    split(v["StartTime"], s0, "\t"); split(v["CurrentTime"], s1, "\t"); secs = s1[3] - s0[3]
    printf "attempted %s, successful %s, failed %s, elapsed %.2f s, %.0f calls/s = %.0f full registrations/s\n",
      v["TotalCallCreated"], v["SuccessfulCall(C)"], v["FailedCall(C)"], secs,
      v["SuccessfulCall(C)"] / secs, per * v["SuccessfulCall(C)"] / secs
  }'
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
if [ -n "$core_pid" ]; then
  cpu1=$(awk '{ print $14 + $15 }' "/proc/$core_pid/stat")
  awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$(tail -n 1 "${name}"_*_.csv | cut -d';' -f1 >/dev/null; echo)" \
    'BEGIN { printf "core CPU time during the run: %.2f s (user+system)\n", t / hz }'
  if [ -n "${SETTLE:-}" ]; then
    echo "core RSS $(rss_kib "$core_pid") KiB at the end; waiting ${SETTLE} s for the transactions to end"
    sleep "$SETTLE"
  fi
  rss1=$(rss_kib "$core_pid")
  echo "core RSS ${rss1} KiB after (+$((rss1 - rss0)) KiB)"
  if [ "${KEEP:-0}" = 1 ]; then
    awk -v a="$rss0" -v b="$rss1" -v u="$calls" 'BEGIN { printf "%.3f KiB per registered user (%d users)\n", (b - a) / u, u }'
  fi
fi
if [ -s "${name}"_*_errors.log ]; then echo "SIPp errors (first lines):"; head -n 5 "${name}"_*_errors.log; fi
