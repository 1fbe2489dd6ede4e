#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in Fuzz/ (README, "Fuzzing").
#
#   scripts/fuzz.sh build [TARGET...]          build the fuzzers into .build-fuzz/fuzzers/ (FUZZ_CONFIG=debug: fuzzers-debug/)
#   scripts/fuzz.sh run SECONDS [TARGET...]    fuzz each target for SECONDS (new inputs kept in .build-fuzz/corpus/)
#   scripts/fuzz.sh smoke SECONDS [TARGET...]  same, on the seed corpus only (what `make test` runs)
#   scripts/fuzz.sh list                       the target names
#
# No TARGET means all of them. FUZZ_JOBS=N runs N targets at a time (default 1). A broken invariant
# or crash stops that target; its input is saved under .build-fuzz/artifacts/TARGET/ and the script
# exits 1 after every target has run. Reproduce with: .build-fuzz/fuzzers/TARGET ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
SWIFTC=${SWIFTC:-swiftc}
SCRATCH="$PWD/.build-fuzz"  # absolute: libFuzzer runs with paths into it
# FUZZ_CONFIG=debug builds without optimisation: quicker to compile, slower to run; what the smoke run
# of `make test` uses, since it replays the seeds for a few seconds. Real fuzzing keeps release.
CONFIG=${FUZZ_CONFIG:-release}
BIN=$SCRATCH/$CONFIG
FUZZERS=$SCRATCH/fuzzers; [ "$CONFIG" = debug ] && FUZZERS=$SCRATCH/fuzzers-debug
JOBS=${FUZZ_JOBS:-1}
# TOMLKit leaks a few strings per parse (its .string getter and table keys), so the config target's
# memory grows by roughly 20 KB per input under ASan: ~2.5 GB in 10 minutes.
RSS_MB=${FUZZ_RSS_MB:-4096}

# One line per target: name | file in Fuzz/Targets | files in Fuzz/Support | package targets to build
# | modules whose objects are linked (the target's module and all it depends on) | extra linker flags.
# Seeds live in Fuzz/corpus/NAME/, an optional libFuzzer dictionary in Fuzz/dict/NAME.dict.
# To add a target, add a line and the files it names (see session-machine for one in WeirGateway).
# A target in a module of its own with no I/O (say WeirSession) lists just that module and what it imports.
TARGETS=(
  "request-head|RequestHead.swift|Invariants.swift HTTPChecks.swift|WeirHTTP|WeirHTTP|"
  "response-head|ResponseHead.swift|Invariants.swift HTTPChecks.swift|WeirHTTP|WeirHTTP|"
  "chunked|Chunked.swift|Invariants.swift|WeirHTTP|WeirHTTP|"
  "proxy-header|ProxyHeader.swift|Invariants.swift|WeirHTTP|WeirHTTP|"
  "config|Config.swift|Invariants.swift|WeirConfig|WeirConfig TOMLKit CTOML|-lstdc++"
  # The session machine through the unit tests' harness (a support path with a / is taken from the
  # repository root); WeirGateway is built with -enable-testing for its `@testable import`.
  "session-machine|SessionMachine.swift|Invariants.swift Tests/WeirGatewayTests/SessionHarness.swift|WeirGateway|WeirGateway WeirHTTP WeirConfig WeirBalance WeirIO CLibevent COpenSSL CNghttp2 CWeirMemory TOMLKit CTOML Atomics _AtomicsShims|-levent -levent_pthreads -lssl -lcrypto -lnghttp2 -lstdc++"
)

field() { local IFS='|'; local parts=($1); echo "${parts[$2]:-}"; }
names() { for t in "${TARGETS[@]}"; do field "$t" 0; done; }
spec() { for t in "${TARGETS[@]}"; do [ "$(field "$t" 0)" = "$1" ] && { echo "$t"; return; }; done
         echo "unknown fuzz target '$1' (have: $(names | tr '\n' ' '))" >&2; exit 2; }

# Package modules are compiled once with coverage and AddressSanitizer instrumentation (C/C++ too),
# in their own scratch path so the normal .build stays uninstrumented.
build_modules() {
  local m
  for m in "$@"; do
    echo "fuzz: building $m (instrumented, $SCRATCH)"
    "$SWIFT" build -c "$CONFIG" --scratch-path "$SCRATCH" --target "$m" \
      -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing \
      -Xcc -fsanitize=fuzzer-no-link,address -Xcxx -fsanitize=fuzzer-no-link,address
  done
}

# Links one fuzzer: the target and its support files, compiled as the main module, with the objects
# of the modules it uses.
link_target() {
  local s=$1 name file module objs=() maps=() support=() m f
  name=$(field "$s" 0); file=$(field "$s" 1)
  module="Fuzz_$(basename "$file" .swift)"
  for f in $(field "$s" 2); do
    if [[ "$f" == */* ]]; then support+=("$f"); else support+=("Fuzz/Support/$f"); fi
  done
  for m in $(field "$s" 4); do
    [ -d "$BIN/$m.build" ] && mapfile -t -O "${#objs[@]}" objs < <(find "$BIN/$m.build" -name '*.o' | sort)
    # Module maps: generated ones (C targets, Swift modules' headers), a dependency's own (C targets with an
    # include/module.modulemap) and the system-library shims in Sysroot/.
    for f in "$BIN/$m.build/module.modulemap" "$BIN/$m.build/include/module.modulemap" \
             "$SCRATCH"/checkouts/*/Sources/"$m"/include/module.modulemap "Sysroot/$m/module.modulemap"; do
      [ -f "$f" ] && maps+=(-Xcc "-fmodule-map-file=$f")
    done
  done
  mkdir -p "$FUZZERS"
  local out="$FUZZERS/$name" stale=0
  for f in "${support[@]}" "Fuzz/Targets/$file" "${objs[@]}" "$0"; do [ "$f" -nt "$out" ] && stale=1; done
  [ "$stale" -eq 1 ] || { echo "fuzz: $out is up to date"; return 0; }
  echo "fuzz: linking $out"
  local optimise=-O; [ "$CONFIG" = debug ] && optimise=-Onone
  # shellcheck disable=SC2046
  "$SWIFTC" "$optimise" -sanitize=fuzzer,address -parse-as-library -module-name "$module" -I "$BIN/Modules" "${maps[@]}" \
    "${support[@]}" "Fuzz/Targets/$file" "${objs[@]}" $(field "$s" 5) -o "$FUZZERS/$name" 2>&1 \
    | grep -v "Cannot export local symbol '__asan" || true
  [ -x "$FUZZERS/$name" ] || { echo "fuzz: linking $name failed" >&2; exit 1; }
}

build() {
  local wanted=("$@") modules=() s m
  [ ${#wanted[@]} -eq 0 ] && mapfile -t wanted < <(names)
  for n in "${wanted[@]}"; do
    s=$(spec "$n")
    for m in $(field "$s" 3); do [[ " ${modules[*]:-} " == *" $m "* ]] || modules+=("$m"); done
  done
  build_modules "${modules[@]}"
  for n in "${wanted[@]}"; do link_target "$(spec "$n")"; done
}

# Runs one target for $2 seconds; $3 = "seeds" to fuzz from the seed corpus only (nothing written).
# Prints one summary line: target, runs, coverage, result.
run_one() {
  local name=$1 seconds=$2 mode=$3 log corpus=() dict=() rc=0
  log="$SCRATCH/logs/$name.log"
  mkdir -p "$SCRATCH/logs" "$SCRATCH/artifacts/$name" "$SCRATCH/corpus/$name"
  # libFuzzer writes new inputs into the first directory: never the seed corpus in the repository.
  if [ "$mode" = seeds ]; then
    rm -rf "$SCRATCH/smoke-corpus/$name"; mkdir -p "$SCRATCH/smoke-corpus/$name"
    corpus+=("$SCRATCH/smoke-corpus/$name")
  else
    corpus+=("$SCRATCH/corpus/$name")
  fi
  corpus+=("$PWD/Fuzz/corpus/$name")
  [ -f "Fuzz/dict/$name.dict" ] && dict=(-dict="$PWD/Fuzz/dict/$name.dict")
  # SWIFT_BACKTRACE off: on a trap the Swift runtime's backtracer would otherwise hold the process,
  # instead of letting libFuzzer save the input and exit.
  (SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
     "$FUZZERS/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb="$RSS_MB" -max_len=8192 \
     -print_final_stats=1 -artifact_prefix="$SCRATCH/artifacts/$name/" "${dict[@]}" "${corpus[@]}") >"$log" 2>&1 || rc=$?
  local runs cov
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' || echo "cov: ?")
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz: %-15s ok      runs: %-10s %s\n' "$name" "$runs" "$cov"
  else
    printf 'fuzz: %-15s FAILED  runs: %-10s %s (exit %s, log %s)\n' "$name" "$runs" "$cov" "$rc" "$log"
    grep -E 'INVARIANT BROKEN|ERROR: |Fatal error|SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/fuzz:   /'
    return 1
  fi
}

run() {
  local seconds=$1 mode=$2; shift 2
  local wanted=("$@") failed=0 pids=() n
  [ ${#wanted[@]} -eq 0 ] && mapfile -t wanted < <(names)
  for n in "${wanted[@]}"; do spec "$n" >/dev/null; [ -x "$FUZZERS/$n" ] || build "$n"; done
  for n in "${wanted[@]}"; do
    run_one "$n" "$seconds" "$mode" & pids+=($!)
    if [ ${#pids[@]} -ge "$JOBS" ]; then wait "${pids[0]}" || failed=1; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  return $failed
}

case "${1:-}" in
  build) shift; build "$@" ;;
  run) [ $# -ge 2 ] || { echo "usage: $0 run SECONDS [TARGET...]" >&2; exit 2; }; s=$2; shift 2; build "$@"; run "$s" grow "$@" ;;
  smoke) [ $# -ge 2 ] || { echo "usage: $0 smoke SECONDS [TARGET...]" >&2; exit 2; }; s=$2; shift 2; build "$@"; run "$s" seeds "$@" ;;
  list) names ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
