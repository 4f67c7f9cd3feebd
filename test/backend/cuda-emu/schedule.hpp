// Test tooling: LLMTS_EMU_SCHEDULE, read by runtime.cpp (the order of blocks, warps and lanes; when cp.async copies
// land; the garbage in shared memory) and fake.cpp (the garbage in fresh device memory): forward (the default),
// reverse, shuffle or shuffle:SEED. Each schedule has its own garbage byte, so that a read of memory nothing wrote
// differs between runs under two schedules.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

enum class EmuOrder { Forward, Reverse, Shuffle };
struct EmuSchedule { EmuOrder order = EmuOrder::Forward; uint64_t seed = 0x9e3779b97f4a7c15ull; unsigned char garbage = 0xcd; };

inline const EmuSchedule& emu_schedule() {
  static const EmuSchedule s = [] {
    EmuSchedule r;
    const char* v = std::getenv("LLMTS_EMU_SCHEDULE");
    std::string text = v == nullptr ? "" : v;
    if (text == "" || text == "forward") return r;
    if (text == "reverse") { r.order = EmuOrder::Reverse; r.garbage = 0x5a; return r; }
    if (text == "shuffle" || text.rfind("shuffle:", 0) == 0) {
      r.order = EmuOrder::Shuffle;
      r.garbage = 0x96;
      if (text.size() > 8) {
        char* end = nullptr;
        unsigned long long seed = std::strtoull(text.c_str() + 8, &end, 10);
        if (*end == 0 && text[8] >= '0' && text[8] <= '9') { r.seed = seed * 2 + 1; return r; }
      } else {
        return r;
      }
    }
    std::fprintf(stderr, "emu: LLMTS_EMU_SCHEDULE=%s: expected forward, reverse, shuffle or shuffle:SEED (SEED a whole number)\n",
                 text.c_str());
    std::abort();
  }();
  return s;
}
