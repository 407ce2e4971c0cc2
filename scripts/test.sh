#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite. Needs root: the
# packet and lifecycle tests load BPF programs and make network namespaces.
#
#   bash scripts/test.sh
#
# The last line is "N passed, N failed" (", N skipped" when tests skipped), counted per meson
# test from build-test/meson-logs/testlog.json. Exit status 0 only if nothing failed.
# Under CI=true a skipped test counts as failed: a privileged test that skips in CI is a
# test that did not run. TEST_BUILD_DIR (default build-test) picks the build directory.
# After the suite, scripts/sanitize.sh builds build-sanitize/ with ASan+UBSan and runs the
# unit and BPF-test-run suites again there (named "sanitize:NAME" in the summary);
# XDPCTL_SANITIZE=0 leaves it out.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

BUILD=${TEST_BUILD_DIR:-build-test}
LOG=$BUILD/meson-logs/testlog.json
SAN_BUILD=build-sanitize
SAN_LOG=$SAN_BUILD/meson-logs/testlog.json
PIN_ROOT=/sys/fs/bpf/xdpctl

say() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: must run as root (the tests load BPF programs and make network namespaces)" >&2
  exit 1
fi

# What exists before the run, to tell leftovers of this run from older ones.
xdpctl_netns() { { ip netns list 2>/dev/null || true; } | awk '$1 ~ /^xdpctl-/ {print $1}' | sort; }
xdpctl_pins() { { find "$PIN_ROOT" -mindepth 1 -type d 2>/dev/null || true; } | sort; }
NETNS_BEFORE=$(xdpctl_netns)
PINS_BEFORE=$(xdpctl_pins)

say "Setup"
bash scripts/setup.sh

say "Configure ($BUILD/)"
if [ -f "$BUILD/build.ninja" ]; then
  # --reconfigure picks up new options and dependencies; a build dir meson cannot reuse
  # (another meson version, a broken state) is made again from scratch.
  meson setup --reconfigure -Dtests=true "$BUILD" >/dev/null ||
    meson setup --wipe -Dtests=true "$BUILD"
elif [ -d "$BUILD" ]; then
  meson setup --wipe -Dtests=true "$BUILD"
else
  meson setup -Dtests=true "$BUILD"
fi

say "Build"
rm -f "$LOG"
build_ok=1
ninja -C "$BUILD" || build_ok=0

if [ "$build_ok" -eq 1 ]; then
  say "Test"
  # The tests that make namespaces name them per test, so two can run at once.
  meson test -C "$BUILD" --no-rebuild --print-errorlogs --num-processes 2 || true
fi

# Its own build (another compiler flag set); a failed build there is one failure.
rm -f "$SAN_LOG"
san_build_ok=1
if [ "$build_ok" -eq 1 ] && [ "${XDPCTL_SANITIZE:-1}" != 0 ]; then
  say "Sanitizers (ASan+UBSan, $SAN_BUILD/)"
  start=$SECONDS
  XDPCTL_SANITIZE_BUILD="$REPO/$SAN_BUILD" bash scripts/sanitize.sh || true
  [ -f "$SAN_LOG" ] || san_build_ok=0
  echo "sanitizers: $((SECONDS - start)) s (build and tests)"
fi

# Leftovers: only warned about; another run or a person may own what was already there.
leftover_warnings() {
  local ns_after pins_after new p
  ns_after=$(xdpctl_netns)
  new=$(comm -13 <(printf '%s\n' "$NETNS_BEFORE") <(printf '%s\n' "$ns_after") | sed '/^$/d')
  if [ -n "$new" ]; then
    echo "test.sh: warning: network namespaces made during this run and still there: $(paste -sd ' ' <<<"$new")" \
      "(a test that did not clean up, or another run going on; remove with 'ip netns del NAME')"
  fi
  pins_after=$(xdpctl_pins)
  new=$(comm -13 <(printf '%s\n' "$PINS_BEFORE") <(printf '%s\n' "$pins_after") | sed '/^$/d')
  if [ -n "$new" ]; then
    echo "test.sh: warning: pins made during this run and still there, under $PIN_ROOT:"
    while read -r p; do echo "  $p"; done <<<"$new"
  fi
  new=$(comm -12 <(printf '%s\n' "$NETNS_BEFORE") <(printf '%s\n' "$ns_after") | sed '/^$/d')
  if [ -n "$new" ]; then
    echo "test.sh: note: xdpctl-* namespaces that were already there before this run: $(paste -sd ' ' <<<"$new")"
  fi
}

say "Summary"
leftover_warnings

if [ "$build_ok" -eq 0 ]; then
  echo "test.sh: the build failed, no test ran (counted as one failure)"
  echo "0 passed, 1 failed"
  exit 1
fi

# Classifies each meson test of testlog.json. A gtest binary whose cases called GTEST_SKIP
# exits 0 (meson says OK), so its output is read for "[  SKIPPED ]" cases too.
summary=$(CI=${CI:-} SAN_BUILD_OK=$san_build_ok python3 - "$LOG" "$SAN_LOG" <<'PY'
import json, os, re, sys

path, san_path = sys.argv[1], sys.argv[2]
ci = os.environ.get("CI", "").lower() == "true"
passed, failed, skipped = 0, 0, 0
notes = []
case_re = re.compile(r"^\[  SKIPPED \] (\S+) \(\d+ ms\)$", re.M)

def read_log(p, prefix, required):
    try:
        return [(prefix, l) for l in open(p) if l.strip()]
    except FileNotFoundError:
        if required:
            notes.append("test.sh: no test log ({}): meson ran no tests".format(p))
        return []

lines = read_log(path, "", True) + read_log(san_path, "sanitize:", False)
if os.environ.get("SAN_BUILD_OK") == "0":
    failed += 1
    notes.append("FAILED: the sanitizer build (scripts/sanitize.sh) ran no tests")

for prefix, line in lines:
    t = json.loads(line)
    name, result = prefix + t.get("name", "?"), t.get("result", "?")
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    cases = case_re.findall(out)
    if result in ("OK", "EXPECTEDFAIL"):
        if cases and ci:
            failed += 1
            notes.append("FAILED (CI=true, skipped cases): {}: {}".format(name, ", ".join(cases)))
        else:
            passed += 1
            if cases:
                notes.append("note: {} passed but skipped {} case(s): {}".format(
                    name, len(cases), ", ".join(cases)))
    elif result == "SKIP":
        if ci:
            failed += 1
            notes.append("FAILED (CI=true, skipped): {}".format(name))
        else:
            skipped += 1
            notes.append("skipped: {}".format(name))
    else:  # FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, INTERRUPT
        failed += 1
        notes.append("FAILED ({}): {}".format(result, name))

for n in notes:
    print(n)
last = "{} passed, {} failed".format(passed, failed)
if skipped:
    last += ", {} skipped".format(skipped)
print(last)
PY
)
echo "$summary"
# The last line says whether anything failed.
failed=$(tail -n 1 <<<"$summary" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
[ "$failed" -eq 0 ]
