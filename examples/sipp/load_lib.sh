# Shared by the load scripts of this folder (sourced, not run): the demo subscribers' AKA keys,
# the injection-file lines, the core's start and stop, SIPp statistics and UE registration.
# The sourcing script sets `here` (this folder), `work` (its scratch directory) and, for
# `register`, `pcscf_port`; `load_start_core` sets `core_pid`.

k=696d732d72732d64656d6f2d4b2d3031   # "ims-rs-demo-K-01"
op=696d732d72732d64656d6f2d4f502d31  # "ims-rs-demo-OP-1"
core_pid=

# the IMSI of subscriber number $1
id_of() { printf "0010100%08d" "$1"; }

# a SIPp injection-file line registering IMSI $1 with the demo keys
csv_line() { echo "$1;[authentication username=$1@ims.example.org aka_K=ims-rs-demo-K-01 aka_OP=ims-rs-demo-OP-1 aka_AMF=AM];"; }

# Ctrl-C to the core (it shuts down cleanly and a profiler around it writes its output), then
# SIGTERM after 30 s
load_stop_core() {
  if [ -n "$core_pid" ]; then
    kill -INT "$core_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$core_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$core_pid" 2>/dev/null || true
    wait "$core_pid" 2>/dev/null || true
    core_pid=
  fi
}

# starts "$CSCF" with the configuration $1 (log in $work/cscf.log) and waits until it runs
load_start_core() {
  "$CSCF" --config "$1" > "$work/cscf.log" 2>&1 &
  core_pid=$!
  for _ in $(seq 1 600); do
    grep -q "running" "$work/cscf.log" && break
    kill -0 "$core_pid" 2>/dev/null || { cat "$work/cscf.log"; exit 1; }
    sleep 0.1
  done
  grep -q "running" "$work/cscf.log" || { echo "core did not start"; cat "$work/cscf.log"; exit 1; }
}

# the last line of a SIPp statistics file: created successful failed seconds
stats() {
  tail -n 1 "$1" | awk -F';' -v h="$(head -n 1 "$1")" '
    BEGIN { n = split(h, names, ";") }
    { for (i = 1; i <= n; i++) v[names[i]] = $i }
    END {
      # StartTime/CurrentTime are "date<TAB>time<TAB>epoch.µs" (ElapsedTime(C) is whole seconds)
      split(v["StartTime"], s0, "\t"); split(v["CurrentTime"], s1, "\t")
      print v["TotalCallCreated"], v["SuccessfulCall(C)"], v["FailedCall(C)"], s1[3] - s0[3]
    }'
}

# registers the UEs of injection file $1 (count $3) from port $2 through the P-CSCF, SIPp run in
# directory $4; exits unless every one succeeded
register() {
  mkdir -p "$4"
  (cd "$4" && sipp "127.0.0.1:$pcscf_port" -sf "$here/load_register_only.xml" -inf "$1" -i 127.0.0.1 -p "$2" \
    -r 100 -m "$3" -nostdin -trace_stat -fd 1 >/dev/null 2>&1 || true)
  read -r _ ok failed _ < <(stats "$4"/load_register_only_*_.csv)
  [ "$ok" = "$3" ] || { echo "registration of $3 UEs from port $2: $ok successful, $failed failed"; exit 1; }
}

# [[subscriber]] tables for the subscriber numbers on stdin (IMSI `id_of`, sip:IMSI@ims.example.org,
# the demo keys); with $1 (e.g. +1666) also tel:$1 followed by the number's 8 digits
subscribers_toml() {
  awk -v k="$k" -v op="$op" -v tel="${1:-}" '{
    id = sprintf("0010100%08d", $1)
    t = tel == "" ? "" : sprintf(", \"tel:%s%08d\"", tel, $1)
    printf "[[subscriber]]\nimpi = \"%s@ims.example.org\"\nimpus = [\"sip:%s@ims.example.org\"%s]\nk = \"%s\"\nop = \"%s\"\namf = \"414d\"\n", id, id, t, k, op
  }'
}

# the injection files of PAIRS pairs: pair p's single UE (number p) in $work/$1p.csv, its $3 other
# UEs (numbers PAIRS + p * $3 + 0..$3-1) in $work/$2p.csv
pair_csvs() {
  for p in $(seq 0 $((pairs - 1))); do
    { echo SEQUENTIAL; csv_line "$(id_of "$p")"; } > "$work/$1$p.csv"
    { echo SEQUENTIAL; for i in $(seq 0 $(($3 - 1))); do csv_line "$(id_of $((pairs + p * $3 + i)))"; done; } > "$work/$2$p.csv"
  done
}

# the core's configuration up to its registrar: SIP ports from $base, the HSS on port $1, the
# PCRF on $2, the HSS admin on $admin_port, roles in memory unless INPROC=0, ENUM to SIP
core_toml() {
  cat <<TOML
domain = "ims.example.org"
ip = "127.0.0.1"
in_process = $([ "${INPROC:-1}" = 1 ] && echo true || echo false)
[ports]
pcscf = $base
icscf = $((base + 2))
scscf_term = $((base + 4))
scscf_orig = $((base + 5))
[hss]
listen = "127.0.0.1:$1"
admin = "127.0.0.1:$admin_port"
[pcrf]
listen = "127.0.0.1:$2"
[registrar]
min_expires = 60
max_expires = 600000
default_expires = 3600
[enum]
default = "!^\\\\+(.*)\$!sip:+\\\\1@ims.example.org!"
TOML
}
