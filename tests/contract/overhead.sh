#!/bin/bash
# Measures the runner's overhead on a passing go_vm_test: runs the launcher of
# //tests/contract/testdata:pass_vm_test N times (after one warm-up run that
# fills the accelerator/QEMU cache) with a Bazel-like environment, reads the
# timings the launcher logs to runner.log, and prints per run and as medians:
#   wall     the launcher process, exec to exit
#   total    runner.Run (Result.Total)
#   guest    the guest's own account (Verdict.Timings: kernel boot + init
#            setup + test + teardown)
#   test     Verdict.Timings.Test
#   overhead total - guest (QEMU start, initrd load, power-off, host side)
#   wall-test  wall - test
# Usage: tools/bazel build //tests/contract/testdata:pass_vm_test && tests/contract/overhead.sh [N]
set -eu
N=${1:-10}
ws=$(cd "$(dirname "$0")/../.." && pwd)
B=$(readlink -f "$ws/bazel-bin")/tests/contract/testdata
cache=$(mktemp -d /tmp/vm-overhead-cache.XXXXXX)
trap 'rm -rf "$cache"' EXIT
for i in $(seq 0 "$N"); do
	d=$(mktemp -d /tmp/vm-overhead-run.XXXXXX)
	mkdir "$d/out" "$d/tmp"
	s=$(date +%s.%N)
	env -i PATH="$PATH" HOME="$HOME" RUNFILES_DIR="$B/pass_vm_test.sh.runfiles" RULES_GO_VM_CACHE="$cache" \
		XML_OUTPUT_FILE="$d/test.xml" TEST_UNDECLARED_OUTPUTS_DIR="$d/out" TEST_TMPDIR="$d/tmp" TEST_TIMEOUT=300 \
		TEST_TARGET=//tests/contract/testdata:pass_vm_test "$B/pass_vm_test.sh" >/dev/null 2>&1 || {
		echo "run $i failed:" >&2
		cat "$d/out/runner.log" >&2
		exit 1
	}
	e=$(date +%s.%N)
	if [ "$i" -gt 0 ]; then
		echo "$s $e $(grep 'vmtest: timings' "$d/out/runner.log")"
	fi
	rm -rf "$d"
done | python3 -c '
import re, statistics, sys
def sec(x):
    v, unit = re.fullmatch(r"([\d.]+)(ms|s)", x).groups()
    return float(v) / (1000 if unit == "ms" else 1)
rows = []
for line in sys.stdin:
    s, e, log = line.split(" ", 2)
    m = re.search(r"total (\S+); guest kernel (\S+), setup (\S+), test (\S+), teardown (\S+);", log)
    total, kern, setup, test, down = map(sec, m.groups())
    wall = float(e) - float(s)
    guest = kern + setup + test + down
    rows.append(dict(wall=wall, total=total, guest=guest, test=test, overhead=total - guest, wall_minus_test=wall - test))
    print(" ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()))
print("median " + " ".join(f"{k} {statistics.median(r[k] for r in rows):.3f}" for k in rows[0]))
'
