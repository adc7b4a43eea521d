#!/usr/bin/env bash
# Calls/s load with Rx against the all-in-one core (`cargo build --release --example cscf`).
#
#   CSCF=target/release/examples/cscf examples/sipp/load_call.sh RATE [CALLS] [CALLERS]
#
# Writes its own configuration (SIP BASE/+2/+4/+5, the IM server BASE+6, Diameter Cx BASE+808,
# Rx BASE+809, HSS admin BASE+20; BASE=5060 by default) with PAIRS * (CALLERS + 1) subscribers, starts the core, then
# for each of PAIRS (default 1) caller/callee pairs of SIPp instances (one SIPp UAC is bound to
# ≈170 calls/s on this machine: several in parallel push the core further):
#   1. registers the called UE (full IMS-AKA) from the UAS port (UAS_PORT, default 5092) and
#      starts a SIPp UAS there (load_call_uas.xml: 180, 200 with the SDP answer, ACK, BYE);
#   2. registers the CALLERS calling UEs from the UAC port (SIPP_PORT, default 5091);
#   3. runs CALLS calls at RATE per second in all (RATE/PAIRS and CALLS/PAIRS per pair, the
#      pairs in parallel; pair i uses UAC port SIPP_PORT+2i and UAS port UAS_PORT+2i) from the
#      UAC port (load_call_uac.xml, callers taken
#      in turn from the injection file): INVITE with SDP → P-CSCF → S-CSCF (orig) → I-CSCF (LIR)
#      → S-CSCF (term) → P-CSCF → callee; each P-CSCF sends an AAR on the SDP answer and an STR
#      on the BYE (two Rx sessions per call), pause HOLD_MS (default 0), BYE.
# Prints attempted/successful/failed calls, failure ratio, calls/s, the core's CPU time per call
# and the Rx sessions still open at the PCRF afterwards (0: every AAR had its STR).
# CAPTURE=file: dumpcap records the Rx port during the calls and the script counts AAR/STR
# requests and answers with tshark. PERF_OUT=file: perf record of the core during the calls.
# SIPP_OPTS: extra SIPp options for the call phase (e.g. "-l 2000" to bound concurrent calls).
# INPROC=1 (default): the co-located roles hand SIP datagrams to each other in memory
# (`in_process = true` in the written configuration); INPROC=0 sends every hop over loopback.
set -euo pipefail
rate=${1:?usage: CSCF=... load_call.sh RATE [CALLS] [CALLERS]}
calls=${2:-3000}
callers=${3:-200}
: "${CSCF:?set CSCF to the cscf example binary (cargo build --release --example cscf)}"
base=${BASE:-5060}
pairs=${PAIRS:-1}
uac_port=${SIPP_PORT:-$((base + 31))}
uas_port=${UAS_PORT:-$((base + 32))}
pcscf_port=$base
rx_port=$((base + 809))
admin_port=$((base + 20))
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
# shellcheck source=load_lib.sh
. "$here/load_lib.sh"
uas_pid=
cap_pid=
cleanup() {
  for u in $uas_pid; do kill "$u" 2>/dev/null || true; wait "$u" 2>/dev/null || true; done
  [ -n "$cap_pid" ] && { kill "$cap_pid" 2>/dev/null || true; wait "$cap_pid" 2>/dev/null || true; }
  load_stop_core
  rm -rf "$work"
}
trap cleanup EXIT
# pair p: callee id p, callers ids PAIRS + p*CALLERS + 0..CALLERS-1
pair_csvs callee callers "$callers"

{
  core_toml $((base + 808)) "$rx_port"
  # the IM server on a port of this run's range (not the default 7070: runs in parallel)
  printf '[im]\nport = %d\n' $((base + 6))
  seq 0 $((pairs * (callers + 1) - 1)) | subscribers_toml
} > "$work/load.toml"
load_start_core "$work/load.toml"
cd "$work"

uas_pids=()
for p in $(seq 0 $((pairs - 1))); do
  register "$work/callee$p.csv" $((uas_port + 2 * p)) 1 "reg_callee$p"
  mkdir -p "uas$p"
  (cd "uas$p" && exec sipp -sf "$here/load_call_uas.xml" -i 127.0.0.1 -p $((uas_port + 2 * p)) \
    -key callee_user "$(id_of "$p")" -nostdin -trace_err >/dev/null 2>&1) &
  uas_pids+=($!)
  register "$work/callers$p.csv" $((uac_port + 2 * p)) "$callers" "reg_callers$p"
done
uas_pid="${uas_pids[*]}"
echo "core pid $core_pid: $pairs pair(s) of 1 callee (ports $uas_port+2i) and $callers callers (ports $uac_port+2i) registered"

if [ -n "${CAPTURE:-}" ]; then
  dumpcap -q -i lo -f "tcp port $rx_port" -w "$CAPTURE" >/dev/null 2>&1 &
  cap_pid=$!
  sleep 1
fi
perf_pid=
if [ -n "${PERF_OUT:-}" ]; then
  perf record -e "${PERF_EVENT:-cpu-clock}" ${PERF_FREQ:--F 499} ${PERF_G:--g} -p "$core_pid" -o "$PERF_OUT" >/dev/null 2>&1 &
  perf_pid=$!
fi
cpu0=$(awk '{ print $14 + $15 }' "/proc/$core_pid/stat")
# the pairs' shares of the rate (SIPp -r takes a decimal rate per -rp 1000 ms) and calls
uac_pids=()
for p in $(seq 0 $((pairs - 1))); do
  mkdir -p "uac$p"
  share=$(( calls / pairs + (p < calls % pairs ? 1 : 0) ))
  prate=$(awk -v r="$rate" -v n="$pairs" 'BEGIN { printf "%.3f", r / n }')
  (cd "uac$p" && exec sipp "127.0.0.1:$pcscf_port" -sf "$here/load_call_uac.xml" -inf "$work/callers$p.csv" \
    -i 127.0.0.1 -p $((uac_port + 2 * p)) -key callee "sip:$(id_of "$p")@ims.example.org" \
    -d "${HOLD_MS:-0}" -r "$prate" -m "$share" \
    -nostdin -trace_err -trace_stat -fd 1 ${SIPP_OPTS:-} >/dev/null 2>&1) &
  uac_pids+=($!)
done
for u in "${uac_pids[@]}"; do wait "$u" || true; done
cpu1=$(awk '{ print $14 + $15 }' "/proc/$core_pid/stat")
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
created=0; ok=0; failed=0; secs=0
for p in $(seq 0 $((pairs - 1))); do
  read -r c o f s < <(stats uac$p/load_call_uac_*_.csv)
  created=$((created + c)); ok=$((ok + o)); failed=$((failed + f)); secs=$(awk -v a="$s" -v b="$secs" 'BEGIN { print (a > b ? a : b) }')
done
awk -v c="$created" -v o="$ok" -v f="$failed" -v s="$secs" -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
  printf "calls attempted %d, successful %d, failed %d (%.3f %%), elapsed %.2f s, %.0f calls/s\n",
    c, o, f, c ? 100 * f / c : 0, s, s ? o / s : 0
  printf "core CPU time during the calls: %.2f s (user+system) = %.0f us per call\n", t / hz, o ? 1e6 * t / hz / o : 0
}'
# let the last BYEs' STRs finish, then ask the PCRF how many Rx sessions are still open
open=
for _ in $(seq 1 50); do
  # {"sessions":["id",...]}: the quoted strings less the key
  open=$(curl -sf "http://127.0.0.1:$admin_port/pcrf/sessions" | grep -o '"[^"]*"' | awk 'END { print NR - 1 }' || true)
  [ "$open" = 0 ] && break
  sleep 0.2
done
echo "Rx sessions open at the PCRF after the run: $open"
if [ -n "$cap_pid" ]; then
  sleep 1
  kill "$cap_pid" 2>/dev/null || true
  wait "$cap_pid" 2>/dev/null || true
  cap_pid=
  # one line per Diameter message (several per frame when TCP coalesces them)
  tshark -r "$CAPTURE" -d tcp.port==$rx_port,diameter -Y diameter -T fields -E occurrence=a -E aggregator=, \
    -e diameter.cmd.code -e diameter.flags.request 2>/dev/null \
    | awk '{ n1 = split($1, c, ","); split($2, r, ",")
             for (i = 1; i <= n1; i++) n[c[i] (r[i] == "1" || r[i] == "True" ? "q" : "a")]++ }
      END { printf "Rx on the wire: AAR %d, AAA %d, STR %d, STA %d\n", n["265q"], n["265a"], n["275q"], n["275a"] }'
fi
for e in uac*/load_call_uac_*_errors.log; do
  if [ -s "$e" ]; then echo "SIPp errors in $e (first lines):"; head -n 5 "$e"; fi
done
