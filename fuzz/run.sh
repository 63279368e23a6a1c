#!/usr/bin/env bash
# Runs fuzz targets for a fixed number of executions each (not a time: a count is what RELIABILITY.md
# reports), on their committed corpora (fuzz/corpus/TARGET), then minimises each corpus. One line per
# target goes to stdout and to fuzz/results.txt: executions, seconds, executions per second, corpus size
# before and after, and the crash count (a crash's input stays in fuzz/artifacts/TARGET: make it a
# regression test). Debug assertions are on (integer overflow panics), no sanitizer (pipelines is safe
# Rust: no unsafe code to check), one process per target.
#
#   fuzz/run.sh [RUNS] [PIPELINE_RUNS] [TARGET...]     (default 10^7, 10^8, every target)
#
# cargo-fuzz wants a nightly compiler; the stable one serves with RUSTC_BOOTSTRAP=1 (set here).
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${1:-10000000}
PIPELINE_RUNS=${2:-100000000}
shift $(($# < 2 ? $# : 2))
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mapfile -t targets < <(if [ $# -gt 0 ]; then printf '%s\n' "$@"; else ls fuzz_targets | sed 's/\.rs$//'; fi)
cargo fuzz build -s none -a
for t in "${targets[@]}"; do
  runs=$RUNS
  [ "$t" = pipeline ] && runs=$PIPELINE_RUNS
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "corpus/$t" | wc -l)
  log=$(mktemp "/tmp/fuzz-$t.XXXXXX.log")
  start=$(date +%s)
  status=0
  cargo fuzz run -s none -a "$t" "corpus/$t" -- -runs="$runs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" -max_len=2048 >"$log" 2>&1 || status=$?
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  cargo fuzz cmin -s none -a "$t" "corpus/$t" >/dev/null 2>&1 || true
  after=$(ls "corpus/$t" | wc -l)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  line="$t execs=$execs seconds=$secs per_second=$(( execs / (secs > 0 ? secs : 1) )) corpus=$before->$after crashes=$crashes exit=$status"
  echo "$line" | tee -a results.txt
  [ "$status" = 0 ] || tail -30 "$log" >&2
  rm -f "$log"
done
