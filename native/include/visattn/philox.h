// visattn — counter-based random numbers shared by every device (cpu, emu, cuda).
// Philox-4x32-10 (Salmon et al., SC'11): key = seed, counter = (group index, offset), where the
// group index is element_index / 4 and each group yields 4 numbers. Identical code runs on the host
// and in kernels, so every device produces the same stream.
#pragma once
#include <cmath>
#include <cstdint>

#include "visattn/hostdevice.h"

namespace va {
namespace philox {

struct U4 {
  uint32_t v[4];
};

VA_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

VA_HD U4 philox4x32_10(uint64_t group, uint64_t offset, uint64_t seed) {
  uint32_t c0 = static_cast<uint32_t>(group), c1 = static_cast<uint32_t>(group >> 32);
  uint32_t c2 = static_cast<uint32_t>(offset), c3 = static_cast<uint32_t>(offset >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  U4 out;
  out.v[0] = c0; out.v[1] = c1; out.v[2] = c2; out.v[3] = c3;
  return out;
}

// Uniform in [0, 1) from the top 24 bits (exactly representable in float).
VA_HD float uniform24(uint32_t u) { return static_cast<float>(u >> 8) * (1.0f / 16777216.0f); }

// Element i of the standard-normal stream: Box–Muller on the pair of the group it belongs to,
// computed in double and rounded once to float.
VA_HD float normalAt(const U4& r, int lane) {
  int pair = lane >> 1;
  double u1 = (static_cast<double>(r.v[2 * pair]) + 1.0) * (1.0 / 4294967296.0);  // (0, 1]
  double u2 = static_cast<double>(r.v[2 * pair + 1]) * (1.0 / 4294967296.0);      // [0, 1)
  double rad = sqrt(-2.0 * log(u1));
  double ang = 6.283185307179586476925286766559 * u2;
  return static_cast<float>((lane & 1) ? rad * sin(ang) : rad * cos(ang));
}

// Dropout mask element `index` of the stream (seed, offset): kept iff its uniform24 draw is >= p.
// Every device and every op that regenerates a mask (dropout, cross-attention probabilities) uses this.
VA_HD bool dropoutKeep(uint64_t index, uint64_t seed, uint64_t offset, float p) {
  const U4 r = philox4x32_10(index >> 2, offset, seed);
  return uniform24(r.v[index & 3]) >= p;
}

}  // namespace philox
}  // namespace va
