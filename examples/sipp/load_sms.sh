#!/usr/bin/env bash
# Page-mode SMS over IP load, end to end, against the all-in-one core
# (`cargo build --release --example cscf`).
#
#   CSCF=target/release/examples/cscf examples/sipp/load_sms.sh RATE [SMS] [SENDERS]
#
# Writes its own configuration (SIP P-CSCF BASE, I-CSCF +2, S-CSCF +4/+5, HSS Cx BASE+8, PCRF
# BASE+9, HSS admin BASE+20, IM server (IP-SM-GW) BASE+70; BASE=6500 by default) with
# PAIRS * (SENDERS + 1) subscribers, each with sip:ID and tel:+1666ID (ID the last 8 digits of
# the IMSI) and the originating SMS iFC to the IM server, starts the core, then for each of
# PAIRS (default 1) sender/recipient pairs of SIPp instances (one SIPp sender submits ≈ 500
# SMS/s at most on a busy 2-core machine: use PAIRS=2 from 500/s up):
#   1. registers the recipient UE (full IMS-AKA) from the recipient port (MT_PORT, default
#      BASE+32) and starts a SIPp UAS there (load_sms_mt.xml): every RP-DATA(SMS-DELIVER) the
#      IP-SM-GW sends it is answered 200 and acknowledged with RP-ACK(SMS-DELIVER-REPORT, the
#      RP-MR of the RP-DATA) in a MESSAGE of its own, answered 202;
#   2. registers the SENDERS sending UEs (default 200) from the sender port (MO_PORT, default
#      BASE+31);
#   3. submits SMS short messages (default 3000) at RATE per second in all (RATE/PAIRS and
#      SMS/PAIRS per pair, the pairs in parallel; pair i uses ports MO_PORT+2i and MT_PORT+2i)
#      with load_sms_mo.xml, senders taken in turn from the injection file: MESSAGE with
#      RP-DATA(SMS-SUBMIT to the pair's recipient, tel:+1666ID) → P-CSCF → S-CSCF (orig, iFC)
#      → IP-SM-GW, 202; the IP-SM-GW's RP-ACK(SMS-SUBMIT-REPORT) MESSAGE is answered 200 by
#      the -oocsf scenario im_sms_ue_ooc.xml; the IP-SM-GW delivers through S-CSCF (term) and
#      P-CSCF to the recipient.
# An SMS is completed when the recipient's SIPp finished its call (DELIVER received, RP-ACK
# accepted with 202; with CAPTURE also its RP-MR checked); failed = submitted - completed. Prints
# submitted/completed/failed SMS, the failure ratio, SMS/s (completed SMS over the time from the
# first submission to the last delivery, or to WAIT seconds after the senders ended),
# the RP-ACKs the senders received, and the core's CPU time per SMS; exits 1 when an SMS failed
# or a sender missed its RP-ACK.
# CAPTURE=file: dumpcap records the recipients' ports during the run, and tshark checks that
# every RP-ACK a recipient sent carries the RP-MR of the RP-DATA it answers (same Call-ID), so
# that the IP-SM-GW really took each delivery as acknowledged (it answers 202 to any RP-ACK).
# SIPP_OPTS: extra SIPp options for the senders. INPROC=1 (default): co-located roles hand SIP
# datagrams to each other in memory; INPROC=0 sends every hop over loopback. WAIT (default 10):
# seconds to wait for the last deliveries once the senders are done. ACK_WAIT_MS (default
# 3000): how long each sender call stays open for its RP-ACK (SIPp -d). IM_STORE: the IM
# server's `[im] store` (a directory, or `redis://HOST:PORT[/PREFIX]` with a binary built with
# `--features redis`): every SMS is then stored durably before its RP-ACK (default: memory).
set -euo pipefail
rate=${1:?usage: CSCF=... load_sms.sh RATE [SMS] [SENDERS]}
count=${2:-3000}
senders=${3:-200}
: "${CSCF:?set CSCF to the cscf example binary (cargo build --release --example cscf)}"
base=${BASE:-6500}
pairs=${PAIRS:-1}
mo_port=${MO_PORT:-$((base + 31))}
mt_port=${MT_PORT:-$((base + 32))}
pcscf_port=$base
admin_port=$((base + 20))
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
# shellcheck source=load_lib.sh
. "$here/load_lib.sh"
mt_pid=
cap_pid=
cleanup() {
  [ -n "$cap_pid" ] && { kill "$cap_pid" 2>/dev/null || true; wait "$cap_pid" 2>/dev/null || true; }
  for u in $mt_pid; do kill "$u" 2>/dev/null || true; wait "$u" 2>/dev/null || true; done
  load_stop_core
  rm -rf "$work"
}
trap cleanup EXIT
# SIPp's regular expressions must see every octet of the binary bodies as a character
export LC_ALL=C
# pair p: recipient id p, senders ids PAIRS + p*SENDERS + 0..SENDERS-1
pair_csvs recipient senders "$senders"

{
  core_toml $((base + 8)) $((base + 9))
  cat <<TOML
[im]
port = $((base + 70))
sessions = false
${IM_STORE:+store = \"$IM_STORE\"}
[[ifc]]
priority = 10
session_case = "originating"
method = "MESSAGE"
header = "Content-Type"
content = "(?i)application/vnd\\\\.3gpp\\\\.sms"
server = "sip:127.0.0.1:$((base + 70))"
TOML
  seq 0 $((pairs * (senders + 1) - 1)) | subscribers_toml +1666
} > "$work/load.toml"
load_start_core "$work/load.toml"
cd "$work"

# RP-DATA MS→network (RP-MR 1, RP-OA empty, RP-DA +15550000) with SMS-SUBMIT (TP-MR 1, no
# TP-SRR, TP-DA +1666 then the 8 digits of recipient id $1, GSM 7-bit "Hello from SIPp over
# IMS"): 44 octets; the semi-octets of the 12 destination digits are swapped pairwise
submit_hex() {
  local d s="" i
  d=$(printf "1666%08d" "$1")
  for i in 0 2 4 6 8 10; do s="$s${d:i+1:1}${d:i:1}"; done
  echo "0001000591515500002201010c91${s}000018c8329bfd0699e5ef36689a84c2416f7b590e4a36a7"
}
bodies() { # dir recipient
  mkdir -p "$1"
  submit_hex "$2" | xxd -r -p > "$1/submit.bin"
  # RP-ACK MS→network: 0x02, RP-MR, RP-User-Data (IEI 0x41, 2 octets: SMS-DELIVER-REPORT)
  printf '02' | xxd -r -p > "$1/ack_head.bin"
  printf '41020000' | xxd -r -p > "$1/ack_tail.bin"
  printf '020041020000' | xxd -r -p > "$1/ack_mr0.bin"
}

share_of() { echo $(( count / pairs + ($1 < count % pairs ? 1 : 0) )); }
mt_pids=()
for p in $(seq 0 $((pairs - 1))); do
  register "$work/recipient$p.csv" $((mt_port + 2 * p)) 1 "reg_recipient$p"
  bodies "mt$p" "$p"
  (cd "mt$p" && exec sipp -sf "$here/load_sms_mt.xml" -i 127.0.0.1 -p $((mt_port + 2 * p)) \
    -key recipient "$(id_of "$p")" -key ack_len 6 -m "$(share_of "$p")" \
    -nostdin -trace_err -trace_stat -fd 1 >/dev/null 2>&1) &
  mt_pids+=($!)
  register "$work/senders$p.csv" $((mo_port + 2 * p)) "$senders" "reg_senders$p"
done
mt_pid="${mt_pids[*]}"
echo "core pid $core_pid: $pairs pair(s) of 1 recipient (ports $mt_port+2i) and $senders senders (ports $mo_port+2i) registered"

if [ -n "${CAPTURE:-}" ]; then
  dumpcap -q -i lo -f "udp portrange $mt_port-$((mt_port + 2 * pairs))" -w "$CAPTURE" >/dev/null 2>&1 &
  cap_pid=$!
  sleep 1
fi
cpu0=$(awk '{ print $14 + $15 }' "/proc/$core_pid/stat")
t0=$(date +%s.%N)
# when the last recipient took its share (the senders stay ACK_WAIT_MS longer)
(
  while :; do
    alive=0
    for u in "${mt_pids[@]}"; do kill -0 "$u" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.05
  done
  date +%s.%N > "$work/mt_done"
) &
watch_pid=$!
mo_pids=()
for p in $(seq 0 $((pairs - 1))); do
  bodies "mo$p" "$p"
  prate=$(awk -v r="$rate" -v n="$pairs" 'BEGIN { printf "%.3f", r / n }')
  (cd "mo$p" && exec sipp "127.0.0.1:$pcscf_port" -sf "$here/load_sms_mo.xml" -oocsf "$here/im_sms_ue_ooc.xml" \
    -inf "$work/senders$p.csv" -i 127.0.0.1 -p $((mo_port + 2 * p)) -key rp_len 44 \
    -d "${ACK_WAIT_MS:-3000}" -r "$prate" -m "$(share_of "$p")" \
    -nostdin -trace_err -trace_stat -fd 1 ${SIPP_OPTS:-} >/dev/null 2>&1) &
  mo_pids+=($!)
done
for u in "${mo_pids[@]}"; do wait "$u" || true; done
# the recipients exit once they took their share; give the last deliveries WAIT seconds
for _ in $(seq 1 $((${WAIT:-10} * 10))); do
  alive=0
  for u in "${mt_pids[@]}"; do kill -0 "$u" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.1
done
cpu1=$(awk '{ print $14 + $15 }' "/proc/$core_pid/stat")
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
t1=$(cat "$work/mt_done" 2>/dev/null || date +%s.%N)
sleep 1.2 # a last statistics dump from a recipient still running
created=0; accepted=0; refused=0; secs=0; acks=0; done_=0; mt_failed=0
for p in $(seq 0 $((pairs - 1))); do
  read -r c o f s < <(stats mo$p/load_sms_mo_*_.csv)
  created=$((created + c)); accepted=$((accepted + o)); refused=$((refused + f))
  # each RP-ACK to a sender is an out-of-call MESSAGE, noted in the -trace_err log
  ooc=$(cat mo$p/load_sms_mo_*_errors.log 2>/dev/null | grep -o "Received out-of-call MESSAGE" | wc -l || true)
  acks=$((acks + ooc))
  secs=$(awk -v a="$s" -v b="$secs" 'BEGIN { print (a > b ? a : b) }')
  read -r _ o f _ < <(stats mt$p/load_sms_mt_*_.csv)
  done_=$((done_ + o)); mt_failed=$((mt_failed + f))
done
for u in "${mt_pids[@]}"; do kill "$u" 2>/dev/null || true; wait "$u" 2>/dev/null || true; done
mt_pid=
mr_bad=0
if [ -n "$cap_pid" ]; then
  sleep 1
  kill "$cap_pid" 2>/dev/null || true
  wait "$cap_pid" 2>/dev/null || true
  cap_pid=
  decode=()
  for p in $(seq 0 $((pairs - 1))); do decode+=(-d "udp.port==$((mt_port + 2 * p)),sip"); done
  # per Call-ID: the RP-MR of the RP-DATA (type 1) and of the RP-ACK (type 2); retransmissions
  # repeat the same pair
  read -r mr_ok mr_bad < <(tshark -r "$CAPTURE" "${decode[@]}" -Y gsm_a.rp -T fields -E occurrence=f \
    -e sip.Call-ID -e gsm_a.rp.msg_type -e gsm_a.rp.rp_message_reference 2>/dev/null \
    | awk -F'\t' '{ t = $2; sub(/^0x/, "", t); t += 0 } t == 1 { data[$1] = $3 } t == 2 { ack[$1] = $3 }
        END { for (c in ack) { if (c in data && data[c] == ack[c]) ok++; else bad++ }
              for (c in data) if (!(c in ack)) bad++
              print ok + 0, bad + 0 }')
  echo "RP-MR check on the wire: $mr_ok deliveries acknowledged with their RP-MR, $mr_bad not"
fi
# with the capture, a delivery whose RP-ACK did not name its RP-DATA is not completed
completed=$((done_ - mr_bad))
[ "$completed" -lt 0 ] && completed=0
failed=$((created - completed))
[ "$failed" -lt 0 ] && failed=0
awk -v c="$created" -v a="$accepted" -v r="$refused" -v d="$done_" -v n="$completed" -v f="$failed" -v mf="$mt_failed" \
  -v k="$acks" -v s="$secs" -v w="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
  -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
  printf "SMS submitted %d (202 %d, failed %d), delivered and acknowledged %d (recipient failures %d), RP-ACKs to the senders %d\n", c, a, r, d, mf, k
  printf "SMS completed %d, failed %d (%.3f %%), first submission to last delivery %.1f s (senders %.1f s): %.0f SMS/s\n",
    n, f, c ? 100 * f / c : 0, w, s, w ? n / w : 0
  printf "core CPU time during the run: %.2f s (user+system) = %.0f us per SMS\n", t / hz, n ? 1e6 * t / hz / n : 0
}'
for e in mo*/load_sms_mo_*_errors.log mt*/load_sms_mt_*_errors.log; do
  [ -s "$e" ] || continue
  # events other than the out-of-call RP-ACKs and the late answers to retransmissions
  # ("Dead call ... (successful)": a retransmitted MESSAGE's second 202 after the call ended)
  dead=$(grep -o 'Dead call [^ ]* (successful)' "$e" | wc -l || true)
  [ "$dead" -gt 0 ] && echo "$e: $dead late responses to retransmitted requests of finished calls"
  other=$(grep -oE '[0-9]+\.[0-9]+: [A-Za-z].{0,120}' "$e" | grep -v ': Received out-of-call MESSAGE' \
    | grep -v ': Dead call [^ ]* (successful)' || true)
  if [ -n "$other" ]; then echo "SIPp errors in $e (first lines):"; echo "$other" | head -n 5; fi
done
[ "$failed" = 0 ] && [ "$refused" = 0 ] && [ "$mt_failed" = 0 ] && [ "$acks" -ge "$accepted" ] && [ "$mr_bad" = 0 ]
