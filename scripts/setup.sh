#!/usr/bin/env bash
# Installs everything xdpctl needs on a fresh Debian bookworm machine. Idempotent:
# a second run changes nothing and takes seconds.
#
# bookworm ships libbpf 1.1 and bpftool 7.1; tcx links, BPF_F_TEST_XDP_LIVE_FRAMES and the
# skeleton C++ members need libbpf >= 1.4, bpftool >= 7.5 and the 6.12 uapi headers, so those
# three come from bookworm-backports (pinned per package, nothing else is upgraded from there).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs packages and mounts bpffs)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
BPO=/etc/apt/sources.list.d/bookworm-backports.sources

have_bpo() {
  grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

if ! have_bpo; then
  echo "setup.sh: adding bookworm-backports to $BPO"
  cat > "$BPO" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

BPO_PKGS=(libbpf-dev libbpf1 bpftool linux-libc-dev)
PKGS=(
  clang llvm lld meson ninja-build pkg-config g++ git
  ccache          # Meson compiles through it when present: rebuilds of other checkouts (CI's fresh clone, worktrees) reuse objects
  libclang-rt-dev  # libFuzzer and the sanitizer runtimes: scripts/fuzz.sh, scripts/sanitize.sh
  libxdp-dev xdp-tools libelf-dev zlib1g-dev libzstd-dev
  libboost-dev libboost-system-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libxxhash-dev   # XXH3 (header only): the page prints of address tables (lib/policy/table_refill.h)
  libpcap-dev     # explain --pcap reads and trace --pcap writes captures
  iproute2 ethtool iputils-ping netcat-openbsd nftables iptables tcpdump
  python3 gnuplot-nox jq time
  dpdk-dev libdpdk-dev
  libsystemd-dev  # xdpd: sd_notify (Type=notify)
  systemd         # systemd-analyze verify of xdpd.service (tests/test_xdpd)
  prometheus      # promtool and a real Prometheus scraping xdpd (tests/test_xdpd)
  groff-base man-db  # the man pages checked without warnings (tests/test_install.sh); man for Documentation=man:xdpd(8)
  curl            # docs/service.md's examples, the scrape benchmark
  etcd-server etcd-client  # fleets (issue 15): xdpd follows etcd; tests run a 3-member cluster
  libssl-dev openssl       # the etcd client's TLS (lib/fleet); tests make their certificates
)

# versions we need: libbpf >= 1.4, bpftool >= 7.5, linux-libc-dev >= 6.12
need_install() {
  local p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || return 0
  done
  dpkg --compare-versions "$(dpkg-query -W -f='${Version}' libbpf-dev 2>/dev/null || echo 0)" ge 1:1.4 || return 0
  dpkg --compare-versions "$(dpkg-query -W -f='${Version}' bpftool 2>/dev/null || echo 0)" ge 7.5 || return 0
  dpkg --compare-versions "$(dpkg-query -W -f='${Version}' linux-libc-dev 2>/dev/null || echo 0)" ge 6.12 || return 0
  return 1
}

if need_install; then
  apt-get update -q
  apt-get install -y -q -t bookworm-backports "${BPO_PKGS[@]}"
  apt-get install -y -q "${PKGS[@]}"
else
  echo "setup.sh: packages already installed"
fi

# bpffs: xdpctl pins its links and maps under /sys/fs/bpf/xdpctl.
if ! mount | grep -q ' /sys/fs/bpf type bpf '; then
  mkdir -p /sys/fs/bpf
  mount -t bpf bpffs /sys/fs/bpf
  echo "setup.sh: mounted bpffs at /sys/fs/bpf"
fi
echo "setup.sh: ok (libbpf $(dpkg-query -W -f='${Version}' libbpf-dev), bpftool $(dpkg-query -W -f='${Version}' bpftool))"
