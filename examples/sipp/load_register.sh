#!/usr/bin/env bash
# Registration load against a running all-in-one core (`cargo run --release --example cscf`):
# adds USERS subscribers through the HSS admin (http://127.0.0.1:5080), then SIPp runs CALLS
# register + de-register cycles at RATE per second (each cycle = two full IMS-AKA procedures with
# UAR, MAR and SAR). Usage: examples/sipp/load_register.sh RATE [CALLS] [USERS]
set -euo pipefail
rate=${1:?usage: load_register.sh RATE [CALLS] [USERS]}
calls=${2:-3000}
users=${3:-3000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
k=696d732d72732d64656d6f2d4b2d3031   # "ims-rs-demo-K-01"
op=696d732d72732d64656d6f2d4f502d31  # "ims-rs-demo-OP-1"
{
  echo SEQUENTIAL
  for i in $(seq 1 "$users"); do
    id=$(printf "0010100%08d" "$i")
    echo "$id;[authentication username=$id@ims.example.org aka_K=ims-rs-demo-K-01 aka_OP=ims-rs-demo-OP-1 aka_AMF=AM];"
    curl -sf -o /dev/null -d "{\"impi\":\"$id@ims.example.org\",\"impus\":[\"sip:$id@ims.example.org\"],\"k\":\"$k\",\"op\":\"$op\",\"amf\":\"414d\"}" \
      http://127.0.0.1:5080/subscribers
  done
} > "$work/users.csv"
cd "$work"
sipp 127.0.0.1:5060 -sf "$here/ims_register_aka_load.xml" -inf users.csv -i 127.0.0.1 -p 5090 \
  -r "$rate" -m "$calls" -nostdin -trace_err -trace_stat -fd 1 >/dev/null 2>&1 || true
tail -n 1 ims_register_aka_load_*_.csv | awk -F';' -v h="$(head -n 1 ims_register_aka_load_*_.csv)" '
  BEGIN { n = split(h, names, ";") }
  { for (i = 1; i <= n; i++) if (names[i] ~ /^(SuccessfulCall\(C\)|FailedCall\(C\)|CallRate\(C\)|ElapsedTime\(C\))$/) print names[i] ": " $i }'
