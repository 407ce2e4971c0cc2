#!/bin/bash
# Builds the xdpctl binary of an older release from this clone's git history, for
# tests/test_upgrade.cpp's upgrade from a real old build:
#   XDPCTL_OLD_BIN=$(tests/build_old_release.sh) meson test -C build upgrade
# REV (default 37fd14d, the 0.1.0 baseline: pinned layout 1) is checked out as a detached
# git worktree under DIR (default build-old-release/ in the source tree); only ctl/xdpctl is
# built. Prints the binary's path on stdout; the build's output goes to stderr.
set -euo pipefail
REV=${1:-37fd14d}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=${2:-$SRC/build-old-release}
cd "$SRC"
git rev-parse --verify -q "$REV^{commit}" >/dev/null ||
    { echo "build_old_release.sh: $REV is not in this clone's history (a shallow clone?)" >&2; exit 1; }
WT=$DIR/src-$REV
if [ ! -d "$WT" ]; then
    mkdir -p "$DIR"
    git worktree add --detach "$WT" "$REV" >&2
fi
if [ ! -f "$WT/build/build.ninja" ]; then
    meson setup -Dtests=false -Dbench=false -Ddpdk=disabled "$WT/build" "$WT" >&2
fi
nice ninja -C "$WT/build" ctl/xdpctl >&2
echo "$WT/build/ctl/xdpctl"
