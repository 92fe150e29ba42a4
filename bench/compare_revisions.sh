#!/usr/bin/env bash
# Side by side in one run: a benchmark of another revision and of this tree, alternated.
#
#   bench/compare_revisions.sh REV [query|ingest|ingest-cpu] [ROUNDS] [-- extra benchmark arguments]
#
# REV is checked out into a git worktree beside the repository (its own .venv, made by its Makefile);
# each side uses its own database (BENCH_QUERY_DB / BENCH_INGEST_DB: `<name>_rev` for REV, the
# default name for this tree; the query data is generated on first use), and the two run one after
# the other ROUNDS times (default 2), so both see the same machine. Every run prints its own table.
# A revision older than BENCH_INGEST_DB always uses `cskpi_bench`: name this tree's database apart
# (BENCH_INGEST_DB=cskpi_bench_new), or the two schemas meet in one database.
# ingest-cpu runs this tree's bench/ingest_cpu.py for both, REV's with REV's python and `--root` (the
# batches are the same; only the code measured differs).
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?usage: bench/compare_revisions.sh REV [query|ingest|ingest-cpu] [ROUNDS] [-- args]}
kind=${2:-query}
rounds=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
[[ "${1:-}" == "--" ]] && shift
sha=$(git rev-parse --short "$rev")
tree="${TMPDIR:-/tmp}/cskpi-rev-$sha"
[[ -d "$tree" ]] || git worktree add --detach "$tree" "$sha" >/dev/null
make -C "$tree" install >/dev/null
make install >/dev/null
case "$kind" in
  query) var=BENCH_QUERY_DB; base=${BENCH_QUERY_DB:-cskpi_bench_q} ;;
  ingest) var=BENCH_INGEST_DB; base=${BENCH_INGEST_DB:-cskpi_bench} ;;
  ingest-cpu) var=BENCH_CPU_DB; base=${BENCH_CPU_DB:-cskpi_bench_cpu} ;;
  *) echo "unknown benchmark $kind (query, ingest or ingest-cpu)" >&2; exit 2 ;;
esac
for round in $(seq "$rounds"); do
  echo "=== round $round: $sha (database ${base}_rev)"
  if [[ "$kind" == ingest-cpu ]]; then
    env "$var=${base}_rev" "$tree/.venv/bin/python" bench/ingest_cpu.py --root "$tree" "$@"
  else
    (cd "$tree" && env "$var=${base}_rev" .venv/bin/python "bench/$kind.py" "$@")
  fi
  echo "=== round $round: this tree ($(git rev-parse --short HEAD)$(git diff --quiet || echo +changes), database $base)"
  env "$var=$base" .venv/bin/python "bench/${kind/-/_}.py" "$@"
done
