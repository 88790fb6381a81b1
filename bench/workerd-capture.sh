#!/usr/bin/env bash
# Stand-in for workerd under `wrangler dev` (MINIFLARE_WORKERD_PATH), used by
# bench/run.mjs for its direct-workerd view: records the arguments and the
# binary config Miniflare passes on stdin into $BENCH_CAPTURE_DIR, then runs
# the real workerd ($BENCH_REAL_WORKERD) on them.
set -euo pipefail
d="${BENCH_CAPTURE_DIR:?}"
n="$(date +%s%N)"
printf '%s\n' "$@" >"$d/$n.args"
tee "$d/$n.config" | "${BENCH_REAL_WORKERD:?}" "$@"
