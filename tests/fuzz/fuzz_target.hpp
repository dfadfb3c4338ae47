#pragma once
// One fuzz target per file tests/fuzz/<name>.cpp, written as
//
//   NICSYNC_FUZZ_TARGET(name) { ...use data, size...; return 0; }
//
// which defines `int nicsync::fuzz::fuzz_<name>(const std::uint8_t*, std::size_t)`. The fuzz
// build (NICSYNC_LIBFUZZER, one program per target) adds libFuzzer's entry points; the normal
// build runs the same function on tests/fuzz/corpus/<name>/ (tests/unit/fuzz_corpus_test.cpp),
// so every input the fuzzer once needed, crash regressions included, is replayed in every run.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace nicsync::fuzz {

/// The corpus file being replayed (set by the corpus test; empty under libFuzzer).
inline std::string& current_input() {
  static std::string name;
  return name;
}

/// Ends the process when a property the target checks does not hold: libFuzzer saves the input
/// as a crash, the corpus test fails.
[[noreturn]] inline void property_failed(const char* target, const char* what, const char* file, int line) {
  std::fprintf(stderr, "fuzz target %s: property violated at %s:%d: %s%s%s\n", target, file, line, what,
               current_input().empty() ? "" : "\n  input: ", current_input().c_str());
  std::abort();
}

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// Silences logging in the fuzz programs (the corpus test keeps its logs).
inline void quiet_logs() { spdlog::set_level(spdlog::level::off); }

}  // namespace nicsync::fuzz

#define NICSYNC_FUZZ_CHECK(target, condition)                                                    \
  do {                                                                                           \
    if (!(condition)) ::nicsync::fuzz::property_failed(#target, #condition, __FILE__, __LINE__); \
  } while (false)

#ifdef NICSYNC_LIBFUZZER
#define NICSYNC_FUZZ_ENTRY(name)                                                      \
  extern "C" int LLVMFuzzerInitialize(int*, char***) {                                \
    ::nicsync::fuzz::quiet_logs();                                                    \
    return 0;                                                                         \
  }                                                                                   \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    return ::nicsync::fuzz::fuzz_##name(data, size);                                  \
  }
#else
#define NICSYNC_FUZZ_ENTRY(name)
#endif

#define NICSYNC_FUZZ_TARGET(name)                              \
  namespace nicsync::fuzz {                                    \
  int fuzz_##name(const std::uint8_t* data, std::size_t size); \
  }                                                            \
  NICSYNC_FUZZ_ENTRY(name)                                     \
  int nicsync::fuzz::fuzz_##name(const std::uint8_t* data, std::size_t size)
