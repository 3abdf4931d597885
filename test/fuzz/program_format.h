#pragma once
// The fuzz input format, shared by the harness (packet_fuzz.cc) and the seed writer
// (make_corpus.cc) so the two cannot drift apart. README.md explains it in prose.

#include <array>
#include <cstdint>

namespace ng::fuzz {

// --- Input format --------------------------------------------------------------------------
//   input   := program*
//   program := head record{n}
//   head    := bits 0-2 n-1 (1..8 records) | bit 3 reset the world first (first program
//              of an input only: see resetWorld)
//              | bits 4-5 0: keep the snapshot, k: apply snapshot variant k-1
//              | bits 6-7 slowTick expiry budget, index into kBudgets
//   record  := ctl dt len_hi len_lo frame[len]   (len clamped to the bytes left)
//   ctl     := bit 0 in port | bit 1 burst | bit 2 slowTick first
//              | bits 3-5 repeat, index into kRepeats | bit 6 fix IPv4 header checksum
//              | bit 7 fix TCP/UDP/ICMP checksum
//   dt      := clock step before the record: < 128 -> dt ms, else (dt - 127) s
inline constexpr uint8_t kHeadResetBit = 0x08;
inline constexpr uint8_t kCtlPort = 0x01;
inline constexpr uint8_t kCtlBurst = 0x02;
inline constexpr uint8_t kCtlTick = 0x04;
inline constexpr uint8_t kCtlFixIp = 0x40;
inline constexpr uint8_t kCtlFixL4 = 0x80;
inline constexpr std::array<uint32_t, 4> kBudgets{8, 64, 256, 1};
inline constexpr std::array<uint32_t, 8> kRepeats{1, 1, 1, 1, 4, 16, 64, 256};

// Head bits that select snapshot variant `variant` (0..2).
inline constexpr uint8_t snapshotBits(unsigned variant) { return static_cast<uint8_t>((variant + 1) << 4); }
// Ctl bits that select kRepeats[index] (4: x4 ... 7: x256).
inline constexpr uint8_t repeatBits(unsigned index) { return static_cast<uint8_t>(index << 3); }

}  // namespace ng::fuzz
