# shellcheck shell=bash
# Sourced by scripts/demo-lb.sh and scripts/demo-fleet.sh (bash): to the repository, root
# checked, and where the build is.
#   DEMO_NAME=demo-lb; source "$(dirname "${BASH_SOURCE[0]}")/demo_prelude.sh"
# Sets REPO, BUILD_DIR (absolute; $BUILD_DIR, default build) and XDPCTL; the colours and the
# section/info/show printers of the demos' output.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

if [ "$(id -u)" -ne 0 ]; then
  echo "$DEMO_NAME: must run as root (it attaches BPF programs and makes network namespaces)" >&2
  exit 1
fi

BUILD_DIR=${BUILD_DIR:-build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$REPO/$BUILD_DIR ;; esac
# shellcheck disable=SC2034  # used by the sourcing script
XDPCTL=$BUILD_DIR/ctl/xdpctl

# shellcheck disable=SC2034  # GREEN and RED: for the sourcing script
if [ -t 1 ]; then
  BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' RED=$'\e[31m' OFF=$'\e[0m'
else
  BOLD='' DIM='' GREEN='' RED='' OFF=''
fi
section() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$OFF"; }
info() { printf '    %s\n' "$*"; }
show() { printf '%s$ %s%s\n' "$DIM" "$*" "$OFF"; }
