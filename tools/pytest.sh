#!/usr/bin/env bash
# Run the test suite, in parallel: one pytest worker per core plus one, at most 4. The extra
# worker fills the minutes the SLURM and torchrun tests spend waiting on daemons; more cost
# memory (each holds torch and its own Snakemake runs) and gain little. A file's tests stay on one
# worker (its module fixtures are built once); files with end-to-end runs start first
# (tests/conftest.py). SIGNPIPE_TEST_WORKERS=N sets the count; 1 runs everything in this one process.
# pytest exits 5 when it collected no test (e.g. a -k that selects nothing): say so plainly and
# exit 0 instead of failing with a bare status.
set -uo pipefail
cd "$(dirname "$0")/.."
cores=$(nproc 2>/dev/null || echo 1)
workers=${SIGNPIPE_TEST_WORKERS:-$(( cores < 3 ? cores + 1 : 4 ))}
parallel=()
if [ "$workers" -gt 1 ]; then
    parallel=(-n "$workers" --dist loadfile --no-loadscope-reorder)
fi
python -m pytest "${parallel[@]}" "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "signpipe: pytest collected no tests for: $*" >&2
    exit 0
fi
exit "$status"
