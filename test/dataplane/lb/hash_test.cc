#include "dataplane/lb/hash.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <random>
#include <string_view>
#include <vector>

#include "dataplane/lb/flow_table.h"

namespace ng::lb {
namespace {

constexpr FlowKey kKey{.src_ip = 0x0a000001, .dst_ip = 0xc0a80001, .src_port = 12345,
                       .dst_port = 80, .proto = 6};

// The seed the flow index hashes with.
constexpr uint64_t kIndexSeed = FlowTable::kIndexSeed;

std::span<const std::byte> bytesOf(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// The values are part of the contract: every box behind ECMP must compute the same
// Maglev choices, including boxes running another build. A change here is a fleet-wide
// reshuffle and must be deliberate.
TEST(HashTest, PinnedValues) {
  EXPECT_EQ(hashFlowKey(kKey, 0), 0x125a839dd67b1502u);
  EXPECT_EQ(hashFlowKey(kKey, 42), 0x9c13a8537123ff4du);
  EXPECT_EQ(hashBytes({}, 0), 0x6ae485ebb06b4f16u);
  EXPECT_EQ(hashBytes(bytesOf("a"), 0), 0x5e9d16ed39fddad6u);
  EXPECT_EQ(hashBytes(bytesOf("node-1"), 0), 0x4bcf06847810d9b3u);
  EXPECT_EQ(hashBytes(bytesOf("0123456789abcdef0"), 0), 0xb81383683f002a04u);
}

// The flow index's hash: no fleet contract (each box indexes its own flows), but
// scripts/mkpcap.py mirrors it to give each benchmark worker the flows it owns, and its
// --self-test checks these two values.
TEST(HashTest, IndexHashPinnedValues) {
  EXPECT_EQ(hashFlowIndex(kKey, 0), 0x9fc7f84d39b0295au);
  EXPECT_EQ(hashFlowIndex(kKey, 42), 0x0967c1b0712d337bu);
}

// Linear probing (the flow index) with hashFlowIndex must probe as far as with
// hashFlowKey, the hash it replaced there: at the index's highest load (one half), for
// keys the way clients and nodes make them.
TEST(HashTest, IndexHashProbesAsFarAsTheFullHash) {
  constexpr uint32_t kSlots = 1u << 20;
  struct Probes {
    double mean;
    uint32_t longest;
  };
  const auto probe = [](const std::vector<FlowKey>& keys, auto hash) {
    std::vector<uint8_t> used(kSlots);
    uint64_t total = 0;
    uint32_t longest = 0;
    for (const FlowKey& k : keys) {
      uint32_t pos = static_cast<uint32_t>(hash(k)) & (kSlots - 1);
      uint32_t d = 0;
      for (; used[pos]; pos = (pos + 1) & (kSlots - 1)) ++d;
      used[pos] = 1;
      total += d;
      longest = std::max(longest, d);
    }
    return Probes{static_cast<double>(total) / keys.size(), longest};
  };
  std::mt19937_64 rng(7);
  std::vector<std::vector<FlowKey>> sets(3);
  for (uint32_t i = 0; i < kSlots / 2; ++i) {
    // Random clients of one VIP:port; sequential clients, 16 ports each; one client's
    // ports toward eight service ports.
    sets[0].push_back({.src_ip = 0x0a000000 | static_cast<uint32_t>(rng() & 0xffffff), .dst_ip = 0x0a640064,
                       .src_port = static_cast<uint16_t>(1024 + rng() % 64000), .dst_port = 80, .proto = 6});
    sets[1].push_back({.src_ip = 0x0a000000 + i / 16, .dst_ip = 0x0a640064,
                       .src_port = static_cast<uint16_t>(40000 + i % 16), .dst_port = 80, .proto = 6});
    sets[2].push_back({.src_ip = 0x0a000001, .dst_ip = 0x0a640064, .src_port = static_cast<uint16_t>(i),
                       .dst_port = static_cast<uint16_t>(80 + i / 65536), .proto = 6});
  }
  for (size_t set = 0; set < sets.size(); ++set) {
    const Probes full = probe(sets[set], [](const FlowKey& k) { return hashFlowKey(k, kIndexSeed); });
    const Probes index = probe(sets[set], [](const FlowKey& k) { return hashFlowIndex(k, kIndexSeed); });
    EXPECT_LT(index.mean, full.mean * 1.1 + 0.01) << "set " << set;
    EXPECT_LT(index.longest, 2 * full.longest + 8) << "set " << set;
  }
}

// Keys that differ in one field only must land on different index positions: the
// multiply's high half reaches the low bits the position uses.
TEST(HashTest, IndexHashSpreadsKeysThatDifferInOneField) {
  for (int field = 0; field < 4; ++field) {
    std::vector<uint32_t> positions;
    for (uint32_t v = 0; v < 4096; ++v) {
      FlowKey k = kKey;
      if (field == 0) k.src_ip += v;
      if (field == 1) k.dst_ip += v;
      if (field == 2) k.src_port = static_cast<uint16_t>(k.src_port + v);
      if (field == 3) k.dst_port = static_cast<uint16_t>(k.dst_port + v);
      positions.push_back(static_cast<uint32_t>(hashFlowIndex(k, kIndexSeed)) & 0xffff);
    }
    std::sort(positions.begin(), positions.end());
    const auto distinct = std::unique(positions.begin(), positions.end()) - positions.begin();
    // 4096 keys thrown at 65536 positions at random leave ~3970 distinct ones.
    EXPECT_GT(distinct, 3900) << "field " << field;
  }
}

TEST(HashTest, FlowKeyMatchesBytesOnLittleEndian) {
  if constexpr (std::endian::native != std::endian::little) GTEST_SKIP();
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    FlowKey k{.src_ip = static_cast<uint32_t>(rng()), .dst_ip = static_cast<uint32_t>(rng()),
              .src_port = static_cast<uint16_t>(rng()), .dst_port = static_cast<uint16_t>(rng()),
              .proto = static_cast<uint8_t>(rng())};
    const uint64_t seed = rng();
    ASSERT_EQ(hashFlowKey(k, seed), hashBytes(std::as_bytes(std::span(&k, 1)), seed));
  }
}

// sameKey reads the stored key as two words: it must agree with operator== for keys
// that differ in any one field, in any bit of it.
TEST(HashTest, SameKeyAgreesWithEquality) {
  std::mt19937_64 rng(2);
  for (int i = 0; i < 2000; ++i) {
    const FlowKey a{.src_ip = static_cast<uint32_t>(rng()), .dst_ip = static_cast<uint32_t>(rng()),
                    .src_port = static_cast<uint16_t>(rng()), .dst_port = static_cast<uint16_t>(rng()),
                    .proto = static_cast<uint8_t>(rng())};
    ASSERT_TRUE(sameKey(a, a));
    FlowKey b = a;
    const int bit = static_cast<int>(rng() % 32);
    switch (i % 5) {
      case 0: b.src_ip ^= 1u << bit; break;
      case 1: b.dst_ip ^= 1u << bit; break;
      case 2: b.src_port = static_cast<uint16_t>(b.src_port ^ (1u << (bit % 16))); break;
      case 3: b.dst_port = static_cast<uint16_t>(b.dst_port ^ (1u << (bit % 16))); break;
      case 4: b.proto = static_cast<uint8_t>(b.proto ^ (1u << (bit % 8))); break;
    }
    ASSERT_FALSE(sameKey(a, b)) << i;
    ASSERT_FALSE(sameKey(b, a)) << i;
    ASSERT_EQ(sameKey(a, b), a == b);
  }
}

TEST(HashTest, SeedAndEveryFieldMatter) {
  const uint64_t h = hashFlowKey(kKey, 0);
  EXPECT_NE(hashFlowKey(kKey, 1), h);
  FlowKey k = kKey;
  k.src_ip ^= 1;
  EXPECT_NE(hashFlowKey(k, 0), h);
  k = kKey;
  k.dst_ip ^= 1;
  EXPECT_NE(hashFlowKey(k, 0), h);
  k = kKey;
  k.src_port ^= 1;
  EXPECT_NE(hashFlowKey(k, 0), h);
  k = kKey;
  k.dst_port ^= 1;
  EXPECT_NE(hashFlowKey(k, 0), h);
  k = kKey;
  k.proto = 17;
  EXPECT_NE(hashFlowKey(k, 0), h);
  // Swapping directions must not collide (a reply is not the same flow).
  k = FlowKey{.src_ip = kKey.dst_ip, .dst_ip = kKey.src_ip, .src_port = kKey.dst_port,
              .dst_port = kKey.src_port, .proto = kKey.proto};
  EXPECT_NE(hashFlowKey(k, 0), h);
}

TEST(HashTest, LengthMatters) {
  // Trailing zero bytes change the hash.
  const std::byte ab[3] = {std::byte{'a'}, std::byte{'b'}, std::byte{0}};
  EXPECT_NE(hashBytes(std::span(ab, 2), 0), hashBytes(std::span(ab, 3), 0));
  const std::byte zeros[16] = {};
  std::vector<uint64_t> seen;
  for (size_t n = 0; n <= 16; ++n) seen.push_back(hashBytes(std::span(zeros, n), 0));
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
}

// Strict avalanche: flipping any input bit of a key flips each output bit with
// probability close to 1/2. 4000 samples: sd ~0.008, so [0.45, 0.55] is > 6 sd.
TEST(HashTest, Avalanche) {
  constexpr int kSamples = 4000;
  constexpr int kInputBits = 104;  // addresses, ports, proto; pad stays zero
  std::vector<int> flips(kInputBits * 64, 0);
  std::mt19937_64 rng(7);
  for (int s = 0; s < kSamples; ++s) {
    FlowKey k{.src_ip = static_cast<uint32_t>(rng()), .dst_ip = static_cast<uint32_t>(rng()),
              .src_port = static_cast<uint16_t>(rng()), .dst_port = static_cast<uint16_t>(rng()),
              .proto = static_cast<uint8_t>(rng())};
    const uint64_t h = hashFlowKey(k, 0);
    for (int bit = 0; bit < kInputBits; ++bit) {
      FlowKey f = k;
      auto* bytes = reinterpret_cast<unsigned char*>(&f);
      bytes[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
      const uint64_t d = h ^ hashFlowKey(f, 0);
      for (int o = 0; o < 64; ++o) flips[bit * 64 + o] += (d >> o) & 1;
    }
  }
  for (int bit = 0; bit < kInputBits; ++bit) {
    for (int o = 0; o < 64; ++o) {
      const double p = flips[bit * 64 + o] / static_cast<double>(kSamples);
      ASSERT_GT(p, 0.45) << "input bit " << bit << " output bit " << o;
      ASSERT_LT(p, 0.55) << "input bit " << bit << " output bit " << o;
    }
  }
}

// Sequential keys (one client, consecutive source ports) spread evenly over buckets
// taken from the low bits, which is how the flow table and Maglev use the hash.
TEST(HashTest, SequentialKeysSpreadEvenly) {
  constexpr int kBuckets = 256;
  constexpr int kKeys = kBuckets * 256;
  std::vector<int> counts(kBuckets, 0);
  for (int i = 0; i < kKeys; ++i) {
    FlowKey k = kKey;
    k.src_port = static_cast<uint16_t>(i);
    ++counts[hashFlowKey(k, 0) % kBuckets];
  }
  // Chi-square with 255 degrees of freedom: mean 255, sd ~22.6; 400 is > 6 sd.
  double chi2 = 0;
  for (int c : counts) chi2 += (c - 256.0) * (c - 256.0) / 256.0;
  EXPECT_LT(chi2, 400.0);
}

}  // namespace
}  // namespace ng::lb
