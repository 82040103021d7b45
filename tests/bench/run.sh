#!/usr/bin/env bash
# tests/bench/run.sh: Anyray's benchmark (see tests/bench/README.md for how to read it).
#
#   tests/bench/run.sh [--build DIR] [--duration S] [--portkey] [--streams N]
#                      [--mock-threads N] [--keep]
#
#   --build DIR       build tree with the binaries (default: <repo>/build)
#   --duration S      seconds per wrk run (default 10)
#   --portkey         also measure the Portkey gateway (npm @portkey-ai/gateway 1.15.2,
#                     installed into tests/bench/.portkey on first use)
#   --streams N       concurrent streams for the hold-open test (default 5000)
#   --mock-threads N  worker threads of the mock upstream (default 1)
#   --keep            keep the work directory (logs, bodies) for a look afterwards
#
# Everything runs on 127.0.0.1. Every load loop is bounded in count and time. Results go to
# stdout as "key=value" lines; progress and logs go to stderr.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/../.." && pwd)"
BUILD="$ROOT/build"
DURATION=10
PORTKEY=0
STREAMS=5000
MOCK_THREADS=1
KEEP=0
CONNS=64
WRK_THREADS=2
TTFB_N=500
LAT_N=3000
STREAM_CHUNKS=5
STREAM_DELAY_MS=1000
PORTKEY_VERSION=1.15.2
KEY="sk-bench-$$"

usage() {
    sed -n '3,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}
while (($#)); do
    case "$1" in
    --build) BUILD="$(cd "${2:?--build needs a directory}" && pwd)"; shift ;;
    --duration) DURATION="${2:?}"; shift ;;
    --portkey) PORTKEY=1 ;;
    --streams) STREAMS="${2:?}"; shift ;;
    --mock-threads) MOCK_THREADS="${2:?}"; shift ;;
    --keep) KEEP=1 ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
[[ "$DURATION" =~ ^[0-9]+$ ]] && ((DURATION >= 1 && DURATION <= 600)) || { echo "run.sh: --duration 1..600" >&2; exit 2; }
[[ "$STREAMS" =~ ^[0-9]+$ ]] && ((STREAMS >= 1 && STREAMS <= 15000)) || { echo "run.sh: --streams 1..15000" >&2; exit 2; }
[[ "$MOCK_THREADS" =~ ^[0-9]+$ ]] && ((MOCK_THREADS >= 1 && MOCK_THREADS <= 64)) || { echo "run.sh: --mock-threads 1..64" >&2; exit 2; }

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

for tool in wrk curl cc; do
    command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install wrk curl gcc)"
done
MOCK_BIN="$BUILD/tests/mock/anyray-mock-upstream"
LAUNCH_BIN="$BUILD/deploy/anyray-launch"
for bin in "$MOCK_BIN" "$LAUNCH_BIN" "$BUILD/edge/anyray-edge" "$BUILD/broker/anyray-broker"; do
    [[ -x "$bin" ]] || die "missing $bin: build first (cmake -S $ROOT -B $BUILD -DCMAKE_BUILD_TYPE=Release && cmake --build $BUILD)"
done

# Thousands of sockets in this shell's children (the stream client); the launcher raises its
# own children's limit and the mock raises its own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= STREAMS + 64)) || die "ulimit -n is $(ulimit -n); $STREAMS streams need more"

WORK="$(mktemp -d /tmp/anyray-bench.XXXXXX)"
DATA="$WORK/data"
mkdir -p "$DATA"
MOCK_PID="" LAUNCH_PID="" PORTKEY_PID=""
SAMPLERS=()

stop_pid() { # pid seconds: TERM, wait, then KILL; only for processes this script started
    local pid="$1" wait="${2:-10}" i
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    say "pid $pid ignored SIGTERM for ${wait}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${SAMPLERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    stop_pid "$PORTKEY_PID" 5
    stop_pid "$LAUNCH_PID" 15
    stop_pid "$MOCK_PID" 5
    if ((KEEP)); then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----------------------------------------------------------------------------------------------
# Helpers.

CLIENT="$WORK/ar_bench_client"
cc -O2 -std=c17 -Wall -Wextra -o "$CLIENT" "$BENCH/ar_bench_client.c" || die "cannot compile ar_bench_client.c"

free_port() { "$CLIENT" freeport; }

# make_body FILE SIZE STREAM(0/1) [PREFIX]: a chat request of exactly SIZE bytes.
make_body() {
    local file="$1" size="$2" stream="$3" prefix="${4:-}" head tail fill need
    head='{"model":"gpt-4o-mini",'
    ((stream)) && head+='"stream":true,'
    head+='"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"'"$prefix"
    tail='"}]}'
    need=$((size - ${#head} - ${#tail}))
    ((need >= 5)) || need=5
    fill="Please summarise the following notes. "
    while ((${#fill} < need)); do fill+="$fill"; done
    printf '%s%s%s' "$head" "${fill:0:need}" "$tail" >"$file"
}

# kv LINE KEY: the value of KEY=... in LINE (empty if absent).
kv() {
    local word
    for word in $1; do
        [[ "$word" == "$2="* ]] && { printf '%s' "${word#*=}"; return 0; }
    done
    return 0
}

# ratio A B [digits]: A/B, or "na".
ratio() {
    awk -v a="${1:-}" -v b="${2:-}" -v d="${3:-3}" 'BEGIN {
        if (a == "" || b == "" || a == "na" || b == "na" || b + 0 == 0) { print "na"; exit }
        printf "%.*f\n", d, a / b }'
}
# diff_ms A_US B_US: (A - B) in ms with 3 decimals.
diff_ms() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a == "" || b == "" || a == "na" || b == "na") { print "na"; exit }
        printf "%.3f\n", (a - b) / 1000 }'
}
us_to_ms() { awk -v a="${1:-}" 'BEGIN { if (a == "" || a == "na") print "na"; else printf "%.3f\n", a / 1000 }'; }
kb_to_mb() { awk -v a="${1:-0}" 'BEGIN { printf "%.1f\n", a / 1024 }'; }

# rss_sampler OUT STOPFILE [x:]NAME=PID...: every 200 ms (at most 3000 samples, about 10
# minutes) reads VmRSS and RssAnon (/proc/PID/status) and Pss (/proc/PID/smaps_rollup) of each
# PID. When STOPFILE appears it writes one line: the peaks of the sums over the PIDs whose name
# has no "x:" prefix (peak_rss_kb, peak_anon_kb, peak_pss_kb) and each PID's own peak VmRSS
# (NAME=kb, prefix dropped).
rss_sampler() {
    local out="$1" stop="$2" i k v entry pid name key val anon pss rss_sum anon_sum pss_sum
    local peak_rss=0 peak_anon=0 peak_pss=0 samples=0
    shift 2
    local -a names=() pids=() counted=()
    local -A best=()
    for entry in "$@"; do
        name="${entry%%=*}"
        if [[ "$name" == x:* ]]; then counted+=(0); else counted+=(1); fi
        names+=("${name#x:}")
        pids+=("${entry#*=}")
    done
    for ((i = 0; i < 3000; i++)); do
        [[ -e "$stop" ]] && break
        rss_sum=0 anon_sum=0 pss_sum=0
        for ((k = 0; k < ${#pids[@]}; k++)); do
            pid="${pids[k]}" name="${names[k]}" val=0 anon=0 pss=0
            if [[ -r /proc/$pid/status ]]; then
                while read -r key v _; do
                    case "$key" in
                    VmRSS:) val="$v" ;;
                    RssAnon:) anon="$v"; break ;;
                    esac
                done <"/proc/$pid/status" 2>/dev/null || true
                while read -r key v _; do
                    [[ "$key" == Pss: ]] && { pss="$v"; break; }
                done <"/proc/$pid/smaps_rollup" 2>/dev/null || true
            fi
            if ((counted[k])); then
                rss_sum=$((rss_sum + val)) anon_sum=$((anon_sum + anon)) pss_sum=$((pss_sum + pss))
            fi
            if ((val > ${best[$name]:-0})); then best[$name]="$val"; fi
        done
        if ((rss_sum > peak_rss)); then peak_rss="$rss_sum"; fi
        if ((anon_sum > peak_anon)); then peak_anon="$anon_sum"; fi
        if ((pss_sum > peak_pss)); then peak_pss="$pss_sum"; fi
        samples=$((samples + 1))
        sleep 0.2
    done
    {
        printf 'peak_rss_kb=%s peak_anon_kb=%s peak_pss_kb=%s samples=%s' \
            "$peak_rss" "$peak_anon" "$peak_pss" "$samples"
        for name in "${names[@]}"; do printf ' %s=%s' "$name" "${best[$name]:-0}"; done
        printf '\n'
    } >"$out"
}

# rss_summary LINE NAMES...: "peak_mb=.. anon_mb=.. pss_mb=.. samples=.. NAME=mb ..." from a
# sampler line.
rss_summary() {
    local line="$1" name
    shift
    printf 'peak_mb=%s anon_mb=%s pss_mb=%s samples=%s' "$(kb_to_mb "$(kv "$line" peak_rss_kb)")" \
        "$(kb_to_mb "$(kv "$line" peak_anon_kb)")" "$(kb_to_mb "$(kv "$line" peak_pss_kb)")" \
        "$(kv "$line" samples)"
    for name in "$@"; do printf ' %s=%s' "$name" "$(kb_to_mb "$(kv "$line" "$name")")"; done
}

SAMPLE_SEQ=0
# start_rss NAME=PID...: starts a sampler; sets SAMPLE_OUT and SAMPLE_STOP.
start_rss() {
    SAMPLE_SEQ=$((SAMPLE_SEQ + 1))
    SAMPLE_OUT="$WORK/rss.$SAMPLE_SEQ"
    SAMPLE_STOP="$WORK/rss.$SAMPLE_SEQ.stop"
    rss_sampler "$SAMPLE_OUT" "$SAMPLE_STOP" "$@" &
    SAMPLE_PID=$!
    SAMPLERS+=("$SAMPLE_PID")
}
# stop_rss: stops the last sampler; sets RSS_LINE to its line. (Not in $(...): a subshell
# cannot wait for its parent's children.)
stop_rss() {
    touch "$SAMPLE_STOP"
    wait "$SAMPLE_PID" 2>/dev/null || true
    RSS_LINE="$(cat "$SAMPLE_OUT" 2>/dev/null || echo "peak_rss_kb=0 samples=0")"
}

CLK_TCK="$(getconf CLK_TCK)"
# cpu_ticks PID: utime+stime of PID in clock ticks (0 when gone).
cpu_ticks() {
    local line
    local -a f
    read -r line <"/proc/$1/stat" 2>/dev/null || { echo 0; return; }
    read -r -a f <<<"${line##*) }"
    echo $((f[11] + f[12]))
}

# run_wrk LABEL URL BODY CONNS THREADS SECONDS [HEADER...]: the WRK line from post.lua.
run_wrk() {
    local label="$1" url="$2" body="$3" conns="$4" threads="$5" secs="$6" out
    shift 6
    out="$WORK/wrk.$label.txt"
    timeout $((secs + 60)) wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s --latency \
        -s "$BENCH/post.lua" "$url" -- "$body" "$@" >"$out" 2>&1 || true
    grep '^WRK ' "$out" | tail -1 || { say "wrk $label failed:"; sed 's/^/    /' "$out" >&2; echo "WRK requests=0"; }
}

# wrk_line TEST TARGET WRKLINE: the result line for one wrk run.
wrk_line() {
    local w="$3" errs=0 key val
    for key in err_connect err_read err_write err_timeout err_status; do
        val="$(kv "$w" "$key")"
        errs=$((errs + ${val:-0}))
    done
    printf '%s target=%s rps=%s p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s requests=%s errors=%s non2xx=%s\n' \
        "$1" "$2" "$(kv "$w" rps)" "$(us_to_ms "$(kv "$w" p50_us)")" "$(us_to_ms "$(kv "$w" p90_us)")" \
        "$(us_to_ms "$(kv "$w" p99_us)")" "$(us_to_ms "$(kv "$w" max_us)")" "$(kv "$w" requests)" \
        "$errs" "$(kv "$w" err_status)"
}

# ----------------------------------------------------------------------------------------------
# Bodies.

make_body "$WORK/body-1k.json" 1024 0
make_body "$WORK/body-100k.json" 102400 0
make_body "$WORK/body-stream.json" 1024 1
make_body "$WORK/body-slow-stream.json" 1024 1 "[mock chunks=$STREAM_CHUNKS chunk_delay=$STREAM_DELAY_MS] "

# ----------------------------------------------------------------------------------------------
# The mock upstream.

MOCK_PORT="$(free_port)"
say "starting the mock upstream on 127.0.0.1:$MOCK_PORT (--threads $MOCK_THREADS)"
"$MOCK_BIN" --port "$MOCK_PORT" --host 127.0.0.1 --key "$KEY" --threads "$MOCK_THREADS" \
    >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!
for ((i = 0; i < 100; i++)); do
    grep -q 'listening on' "$WORK/mock.log" 2>/dev/null && break
    kill -0 "$MOCK_PID" 2>/dev/null || die "the mock exited: $(cat "$WORK/mock.log")"
    sleep 0.1
done
grep -q 'listening on' "$WORK/mock.log" || die "the mock did not start in 10 s"
DIRECT="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
AUTH="Authorization: Bearer $KEY"

# ----------------------------------------------------------------------------------------------
# The Anyray stack.

ANYRAY_PORT="$(free_port)"
say "starting the Anyray stack on 127.0.0.1:$ANYRAY_PORT (data in $DATA)"
ANYRAY_DATA_DIR="$DATA" ANYRAY_PORT="$ANYRAY_PORT" ANYRAY_HOST=127.0.0.1 \
    ANYRAY_PROVIDER_URL_OPENAI="http://127.0.0.1:$MOCK_PORT/v1" ANYRAY_PROVIDER_KEY_OPENAI="$KEY" \
    "$LAUNCH_BIN" >"$WORK/launch.log" 2>&1 &
LAUNCH_PID=$!
ANYRAY="http://127.0.0.1:$ANYRAY_PORT/v1/chat/completions"
ready=0
for ((i = 0; i < 300; i++)); do
    kill -0 "$LAUNCH_PID" 2>/dev/null || die "the launcher exited: $(tail -20 "$WORK/launch.log")"
    code="$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H "$AUTH" -H 'Content-Type: application/json' \
        --data-binary @"$WORK/body-1k.json" "$ANYRAY" 2>/dev/null || true)"
    [[ "$code" == 200 ]] && { ready=1; break; }
    sleep 0.1
done
((ready)) || die "Anyray did not answer 200 within 30 s (last: $code): $(tail -20 "$WORK/launch.log")"

# The stack's processes from the launcher's pid files (broker, every actor, the edge).
STACK=()
for f in "$DATA"/pids/*.pid; do
    name="$(basename "$f" .pid)"
    [[ "$name" == anyray-launch* ]] && continue
    STACK+=("$name=$(cat "$f")")
done
((${#STACK[@]})) || die "no pid files in $DATA/pids"
STACK_NAMES="$(printf '%s ' "${STACK[@]%%=*}")"

# ----------------------------------------------------------------------------------------------
echo "anyray-bench date=$(date -u +%Y-%m-%dT%H:%M:%SZ) commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo na) cpus=$(nproc) duration_s=$DURATION wrk_conns=$CONNS wrk_threads=$WRK_THREADS mock_threads=$MOCK_THREADS build=$BUILD"
echo "stack processes=${#STACK[@]} names=${STACK_NAMES% }"

# 1 + 5. Throughput at 64 connections, 1 KB and 100 KB; RSS and CPU during the 1 KB Anyray run.
declare -A RPS P50 P99
CPU_LINES=()
for size in 1k 100k; do
    body="$WORK/body-$size.json"
    say "throughput $size: direct (warm-up 1 s, then ${DURATION}s)"
    run_wrk "warm-direct-$size" "$DIRECT" "$body" "$CONNS" "$WRK_THREADS" 1 "$AUTH" >/dev/null
    w="$(run_wrk "direct-$size" "$DIRECT" "$body" "$CONNS" "$WRK_THREADS" "$DURATION" "$AUTH")"
    wrk_line "throughput body=$size conns=$CONNS" direct "$w"
    RPS[direct-$size]="$(kv "$w" rps)" P50[direct-$size]="$(kv "$w" p50_us)" P99[direct-$size]="$(kv "$w" p99_us)"

    say "throughput $size: anyray (warm-up 1 s, then ${DURATION}s)"
    run_wrk "warm-anyray-$size" "$ANYRAY" "$body" "$CONNS" "$WRK_THREADS" 1 "$AUTH" >/dev/null
    if [[ "$size" == 1k ]]; then start_rss "${STACK[@]}" "x:mock=$MOCK_PID"; fi
    declare -A T0=()
    for entry in "${STACK[@]}" "mock=$MOCK_PID"; do T0[${entry%%=*}]="$(cpu_ticks "${entry#*=}")"; done
    w="$(run_wrk "anyray-$size" "$ANYRAY" "$body" "$CONNS" "$WRK_THREADS" "$DURATION" "$AUTH")"
    wrk_line "throughput body=$size conns=$CONNS" anyray "$w"
    RPS[anyray-$size]="$(kv "$w" rps)" P50[anyray-$size]="$(kv "$w" p50_us)" P99[anyray-$size]="$(kv "$w" p99_us)"
    if [[ "$size" == 1k ]]; then
        stop_rss
        rss="$RSS_LINE"
    fi
    # CPU time each process spent during the measured run: which hop costs what.
    reqs="$(kv "$w" requests)"
    cpu_line="cpu load=anyray-$size-c$CONNS unit=cpu_us_per_request"
    cpu_pct="cpu load=anyray-$size-c$CONNS unit=percent_of_one_core"
    stack_dt=0
    for entry in "${STACK[@]}" "mock=$MOCK_PID"; do
        name="${entry%%=*}"
        dt=$(($(cpu_ticks "${entry#*=}") - ${T0[$name]}))
        if [[ "$name" != mock ]]; then stack_dt=$((stack_dt + dt)); fi
        cpu_line+=" $name=$(awk -v t="$dt" -v hz="$CLK_TCK" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "na" }')"
        cpu_pct+=" $name=$(awk -v t="$dt" -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN { printf "%.0f", t / hz / s * 100 }')"
    done
    cpu_line+=" stack_total=$(awk -v t="$stack_dt" -v hz="$CLK_TCK" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "na" }')"
    cpu_pct+=" stack_total=$(awk -v t="$stack_dt" -v hz="$CLK_TCK" -v s="$DURATION" 'BEGIN { printf "%.0f", t / hz / s * 100 }')"
    CPU_LINES+=("$cpu_line" "$cpu_pct")
    printf 'throughput body=%s ratio=anyray/direct rps=%s p50=%s p99=%s\n' "$size" \
        "$(ratio "${RPS[anyray-$size]}" "${RPS[direct-$size]}")" \
        "$(ratio "${P50[anyray-$size]}" "${P50[direct-$size]}" 2)" \
        "$(ratio "${P99[anyray-$size]}" "${P99[direct-$size]}" 2)"
done

# RSS during the 64-connection 1 KB load: the peak of the sum over the stack's processes.
STACK_RSS_MB="$(kb_to_mb "$(kv "$rss" peak_rss_kb)")"
echo "rss load=anyray-1k-c$CONNS target=anyray-stack $(rss_summary "$rss" "${STACK[@]%%=*}")"
echo "rss load=anyray-1k-c$CONNS target=mock peak_mb=$(kb_to_mb "$(kv "$rss" mock)")"
printf '%s\n' "${CPU_LINES[@]}"

# 2a. One broker round trip (client -> broker -> router actor -> broker -> client), the unit
# of the gateway's added latency: a call makes two before the provider answers.
if [[ -x "$BUILD/tests/bench/ar_bench_hop" ]]; then
    say "broker round trip: sequential route requests"
    ANYRAY_DATA_DIR="$DATA" timeout 60 "$BUILD/tests/bench/ar_bench_hop" 3000 || true
fi

# 2b. The optimizer pipeline in process (parse, the baked-in default pipeline, dump) on one
# pinned core, 1 KB / 100 KB / 1 MB requests; the stack is idle meanwhile. Its target line is
# printed with the others at the end.
PIPELINE_TARGET=""
if [[ -x "$BUILD/tests/bench/ar_bench_pipeline" ]]; then
    say "optimizer pipeline in process: 1 KB, 100 KB and 1 MB requests"
    pipe_out="$(timeout 300 "$BUILD/tests/bench/ar_bench_pipeline" || true)"
    grep -v '^target ' <<<"$pipe_out" || true
    PIPELINE_TARGET="$(grep '^target ' <<<"$pipe_out" || true)"
fi

# 2 + 3. One connection, sequential, keep-alive: round-trip latency (non-streamed 1 KB) and
# time to the first streamed body byte. The client alternates direct and anyray request by
# request so both see the same moments of a noisy machine.
say "latency at 1 connection: direct and anyray alternating ($LAT_N rounds)"
timeout 60 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$ANYRAY_PORT" --body "$WORK/body-1k.json" \
    --n 100 --timeout-s 30 --header "$AUTH" >/dev/null || true
out="$(timeout 300 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$ANYRAY_PORT" --body "$WORK/body-1k.json" \
    --n "$LAT_N" --timeout-s 240 --header "$AUTH" || true)"
ld="$(sed -n 1p <<<"$out")" la="$(sed -n 2p <<<"$out")"
lat_line() { # target line
    printf 'latency body=1k conns=1 target=%s p50_ms=%s p90_ms=%s p99_ms=%s requests=%s errors=%s\n' "$1" \
        "$(us_to_ms "$(kv "$2" total_p50_us)")" "$(us_to_ms "$(kv "$2" total_p90_us)")" \
        "$(us_to_ms "$(kv "$2" total_p99_us)")" "$(kv "$2" ok)" "$(kv "$2" errors)"
}
lat_line direct "$ld"
lat_line anyray "$la"
declare -A L50 L99
L50[direct]="$(kv "$ld" total_p50_us)" L99[direct]="$(kv "$ld" total_p99_us)"
L50[anyray]="$(kv "$la" total_p50_us)" L99[anyray]="$(kv "$la" total_p99_us)"
ADDED_P50="$(diff_ms "${L50[anyray]}" "${L50[direct]}")"
ADDED_P99="$(diff_ms "${L99[anyray]}" "${L99[direct]}")"
echo "latency body=1k conns=1 added=anyray-direct p50_ms=$ADDED_P50 p99_ms=$ADDED_P99"

say "TTFB: direct and anyray alternating ($TTFB_N streamed rounds)"
timeout 60 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$ANYRAY_PORT" --body "$WORK/body-stream.json" \
    --n 50 --timeout-s 30 --header "$AUTH" >/dev/null || true
out="$(timeout 300 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$ANYRAY_PORT" --body "$WORK/body-stream.json" \
    --n "$TTFB_N" --timeout-s 240 --header "$AUTH" || true)"
td="$(sed -n 1p <<<"$out")" ta="$(sed -n 2p <<<"$out")"
echo "ttfb stream=1 target=direct $td"
echo "ttfb stream=1 target=anyray $ta"
declare -A TT50
TT50[direct]="$(kv "$td" ttfb_p50_us)" TT50[anyray]="$(kv "$ta" ttfb_p50_us)"
ADDED_TTFB="$(diff_ms "${TT50[anyray]}" "${TT50[direct]}")"
echo "ttfb stream=1 added=anyray-direct p50_ms=$ADDED_TTFB p90_ms=$(diff_ms "$(kv "$ta" ttfb_p90_us)" "$(kv "$td" ttfb_p90_us)")"

# 4. Many concurrent slow streams held open through Anyray.
say "streams: $STREAMS concurrent through anyray (mock: $STREAM_CHUNKS chunks, ${STREAM_DELAY_MS} ms apart)"
start_rss "${STACK[@]}" "x:mock=$MOCK_PID"
(
    for ((i = 0; i < 600; i++)); do
        [[ -e "$WORK/streams.done" ]] && break
        curl -s -m 1 "http://127.0.0.1:$MOCK_PORT/__mock/stats" 2>/dev/null | grep -o '"open_streams":[0-9]*' | cut -d: -f2 || true
        sleep 0.5
    done >"$WORK/mock-open.txt"
) &
POLL_PID=$!
SAMPLERS+=("$POLL_PID")
s="$(timeout 180 "$CLIENT" streams --port "$ANYRAY_PORT" --body "$WORK/body-slow-stream.json" --n "$STREAMS" \
    --ramp 250 --timeout-s 120 --header "$AUTH" || true)"
touch "$WORK/streams.done"
wait "$POLL_PID" 2>/dev/null || true
stop_rss
rss="$RSS_LINE"
mock_open_peak="$(sort -n "$WORK/mock-open.txt" 2>/dev/null | tail -1)"
echo "streams target=anyray ${s:-n=$STREAMS ok=0 errors=$STREAMS (client failed)} mock_open_streams_peak=${mock_open_peak:-na}"
echo "rss load=anyray-$STREAMS-streams target=anyray-stack $(rss_summary "$rss" "${STACK[@]%%=*}")"
echo "rss load=anyray-$STREAMS-streams target=mock peak_mb=$(kb_to_mb "$(kv "$rss" mock)")"
STREAMS_OK="$(kv "$s" ok)"
STREAMS_ERR="$(kv "$s" errors)"

restarts="$(grep -c -iE 'restart|exited|signal' "$WORK/launch.log" || true)"
echo "stack restarts_or_exits_in_launcher_log=$restarts"

# ----------------------------------------------------------------------------------------------
# 6. Portkey, side by side.

PK_OK=0
if ((PORTKEY)); then
    command -v node >/dev/null && command -v npm >/dev/null || die "--portkey needs node and npm"
    PK_DIR="$BENCH/.portkey"
    PK_MAIN="$PK_DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
    have="$(node -p "require('$PK_DIR/node_modules/@portkey-ai/gateway/package.json').version" 2>/dev/null || true)"
    if [[ "$have" != "$PORTKEY_VERSION" ]]; then
        say "installing @portkey-ai/gateway@$PORTKEY_VERSION into $PK_DIR"
        mkdir -p "$PK_DIR"
        printf '{"name":"anyray-bench-portkey","private":true,"dependencies":{"@portkey-ai/gateway":"%s"}}\n' \
            "$PORTKEY_VERSION" >"$PK_DIR/package.json"
        (cd "$PK_DIR" && timeout 600 npm install --no-audit --no-fund --loglevel=error) >&2 ||
            die "npm install @portkey-ai/gateway@$PORTKEY_VERSION failed"
    fi
    # Stop Anyray first: the two gateways should not share the two cores with each other.
    say "stopping the Anyray stack before Portkey runs"
    stop_pid "$LAUNCH_PID" 15
    LAUNCH_PID=""
    PK_PORT="$(free_port)"
    say "starting Portkey $PORTKEY_VERSION on 127.0.0.1:$PK_PORT ($(node --version))"
    (cd "$PK_DIR" && exec node --require "$BENCH/portkey-loopback.cjs" "$PK_MAIN" --port="$PK_PORT" --headless) \
        >"$WORK/portkey.log" 2>&1 &
    PORTKEY_PID=$!
    PORTKEY="http://127.0.0.1:$PK_PORT/v1/chat/completions"
    PKH=("x-portkey-provider: openai" "x-portkey-custom-host: http://127.0.0.1:$MOCK_PORT/v1" "$AUTH")
    for ((i = 0; i < 300; i++)); do
        kill -0 "$PORTKEY_PID" 2>/dev/null || die "Portkey exited: $(tail -20 "$WORK/portkey.log")"
        code="$(curl -s -o /dev/null -w '%{http_code}' -m 2 "${PKH[@]/#/-H}" -H 'Content-Type: application/json' \
            --data-binary @"$WORK/body-1k.json" "$PORTKEY" 2>/dev/null || true)"
        [[ "$code" == 200 ]] && { PK_OK=1; break; }
        sleep 0.1
    done
    ((PK_OK)) || die "Portkey did not answer 200 within 30 s (last: $code): $(tail -20 "$WORK/portkey.log")"
    for size in 1k 100k; do
        body="$WORK/body-$size.json"
        say "throughput $size: portkey (warm-up 1 s, then ${DURATION}s)"
        run_wrk "warm-portkey-$size" "$PORTKEY" "$body" "$CONNS" "$WRK_THREADS" 1 "${PKH[@]}" >/dev/null
        if [[ "$size" == 1k ]]; then start_rss "portkey=$PORTKEY_PID" "x:mock=$MOCK_PID"; fi
        w="$(run_wrk "portkey-$size" "$PORTKEY" "$body" "$CONNS" "$WRK_THREADS" "$DURATION" "${PKH[@]}")"
        if [[ "$size" == 1k ]]; then stop_rss; pk_rss="$RSS_LINE"; fi
        wrk_line "throughput body=$size conns=$CONNS" portkey "$w"
        RPS[portkey-$size]="$(kv "$w" rps)" P50[portkey-$size]="$(kv "$w" p50_us)" P99[portkey-$size]="$(kv "$w" p99_us)"
        printf 'throughput body=%s ratio=portkey/direct rps=%s p50=%s p99=%s\n' "$size" \
            "$(ratio "${RPS[portkey-$size]}" "${RPS[direct-$size]}")" \
            "$(ratio "${P50[portkey-$size]}" "${P50[direct-$size]}" 2)" \
            "$(ratio "${P99[portkey-$size]}" "${P99[direct-$size]}" 2)"
        printf 'throughput body=%s ratio=anyray/portkey rps=%s p50=%s p99=%s\n' "$size" \
            "$(ratio "${RPS[anyray-$size]}" "${RPS[portkey-$size]}" 2)" \
            "$(ratio "${P50[anyray-$size]}" "${P50[portkey-$size]}" 2)" \
            "$(ratio "${P99[anyray-$size]}" "${P99[portkey-$size]}" 2)"
    done
    echo "rss load=portkey-1k-c$CONNS target=portkey $(rss_summary "$pk_rss")"
    echo "rss load=portkey-1k-c$CONNS target=mock peak_mb=$(kb_to_mb "$(kv "$pk_rss" mock)")"
    pk_args=()
    for h in "${PKH[@]}"; do pk_args+=(--header "$h"); done
    say "latency at 1 connection: direct and portkey alternating ($LAT_N rounds)"
    timeout 60 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$PK_PORT" --body "$WORK/body-1k.json" \
        --n 100 --timeout-s 30 "${pk_args[@]}" >/dev/null || true
    out="$(timeout 300 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$PK_PORT" --body "$WORK/body-1k.json" \
        --n "$LAT_N" --timeout-s 240 "${pk_args[@]}" || true)"
    ld="$(sed -n 1p <<<"$out")" lp="$(sed -n 2p <<<"$out")"
    lat_line direct-paired-with-portkey "$ld"
    lat_line portkey "$lp"
    echo "latency body=1k conns=1 added=portkey-direct p50_ms=$(diff_ms "$(kv "$lp" total_p50_us)" "$(kv "$ld" total_p50_us)") p99_ms=$(diff_ms "$(kv "$lp" total_p99_us)" "$(kv "$ld" total_p99_us)")"
    say "TTFB: direct and portkey alternating ($TTFB_N streamed rounds)"
    out="$(timeout 300 "$CLIENT" ttfb --port "$MOCK_PORT" --port "$PK_PORT" --body "$WORK/body-stream.json" \
        --n "$TTFB_N" --timeout-s 240 "${pk_args[@]}" || true)"
    td="$(sed -n 1p <<<"$out")" tp="$(sed -n 2p <<<"$out")"
    if [[ "$(kv "$tp" ok)" == 0 || -z "$tp" ]]; then
        pk_status="$(curl -s -o "$WORK/portkey-stream.txt" -w '%{http_code}' -m 5 "${PKH[@]/#/-H}" \
            -H 'Content-Type: application/json' --data-binary @"$WORK/body-stream.json" "$PORTKEY" || true)"
        echo "ttfb stream=1 target=portkey unavailable=1 status=$pk_status body=$(head -c 120 "$WORK/portkey-stream.txt" | tr -s ' \n' '_') $tp"
    else
        echo "ttfb stream=1 target=direct-paired-with-portkey $td"
        echo "ttfb stream=1 target=portkey $tp"
        echo "ttfb stream=1 added=portkey-direct p50_ms=$(diff_ms "$(kv "$tp" ttfb_p50_us)" "$(kv "$td" ttfb_p50_us)")"
    fi
fi

# 7. Time to the first streamed token per provider family and caller shape, direct to the
# provider mock vs through a stack of its own (ttfb_providers.mjs, about 4 minutes); needs node
# and the provider mock's packages. Its target line goes with the others at the end.
TTFB_PROVIDERS_TARGET=""
if command -v node >/dev/null && [[ -d "$ROOT/tests/mock/providers/node_modules" ]]; then
    say "TTFB per provider family: direct vs through, OpenAI and Anthropic caller shapes"
    tp_out="$(AR_BUILD_DIR="$BUILD" timeout 900 node "$BENCH/ttfb_providers.mjs" || true)"
    grep -v '^target ' <<<"$tp_out" || true
    TTFB_PROVIDERS_TARGET="$(grep '^target ' <<<"$tp_out" || true)"
fi

# ----------------------------------------------------------------------------------------------
# The issue's targets, checked against this run (reported, not asserted).

check() { # name measured op limit
    local verdict
    verdict="$(awk -v m="$2" -v op="$3" -v l="$4" 'BEGIN {
        if (m == "" || m == "na") { print "n/a"; exit }
        ok = (op == ">=") ? (m + 0 >= l + 0) : (op == "<") ? (m + 0 < l + 0) : (m + 0 == l + 0)
        print ok ? "ok" : "MISS" }')"
    printf 'target %-34s measured=%-10s want %s %-8s %s\n' "$1" "${2:-na}" "$3" "$4" "$verdict"
}
check throughput_1k_anyray/direct "$(ratio "${RPS[anyray-1k]}" "${RPS[direct-1k]}")" ">=" 0.08
if ((PK_OK)); then
    check throughput_100k_anyray/portkey "$(ratio "${RPS[anyray-100k]}" "${RPS[portkey-100k]}" 2)" ">=" 5
fi
check throughput_100k_anyray_rps "${RPS[anyray-100k]}" ">=" 2400
check added_latency_p50_ms "$ADDED_P50" "<" 0.3
check added_latency_p99_ms "$ADDED_P99" "<" 2
check added_ttfb_p50_ms "$ADDED_TTFB" "<" 1
check streams_errors "${STREAMS_ERR:-na}" "=" 0
check streams_ok "${STREAMS_OK:-na}" "=" "$STREAMS"
check stack_rss_mb_at_64_conns "$STACK_RSS_MB" "<" 60
if [[ -n "$PIPELINE_TARGET" ]]; then echo "$PIPELINE_TARGET"; fi
if [[ -n "$TTFB_PROVIDERS_TARGET" ]]; then echo "$TTFB_PROVIDERS_TARGET"; fi
