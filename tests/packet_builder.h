// The frame builder lives in lib/net/ (`xdpctl explain` builds its packets with it); tests
// and benchmarks keep using it under their own namespace.
#pragma once

#include "net/packet_builder.h"

namespace xdpctl::test {
using namespace xdpctl::net;
}  // namespace xdpctl::test
