#pragma once
// Every fuzz target, for the corpus test (tests/unit/fuzz_corpus_test.cpp). A new
// tests/fuzz/<name>.cpp is listed here and gets a seed corpus in tests/fuzz/corpus/<name>/.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nicsync::fuzz {

int fuzz_config(const std::uint8_t* data, std::size_t size);
int fuzz_vault_response(const std::uint8_t* data, std::size_t size);
int fuzz_vault_event(const std::uint8_t* data, std::size_t size);
int fuzz_cleartax_response(const std::uint8_t* data, std::size_t size);
int fuzz_gstin(const std::uint8_t* data, std::size_t size);
int fuzz_api_request(const std::uint8_t* data, std::size_t size);
int fuzz_audit_entry(const std::uint8_t* data, std::size_t size);

struct Target {
  std::string_view name;
  int (*run)(const std::uint8_t* data, std::size_t size);
};

inline constexpr Target kTargets[] = {
    {"config", &fuzz_config},
    {"vault_response", &fuzz_vault_response},
    {"vault_event", &fuzz_vault_event},
    {"cleartax_response", &fuzz_cleartax_response},
    {"gstin", &fuzz_gstin},
    {"api_request", &fuzz_api_request},
    {"audit_entry", &fuzz_audit_entry},
};

}  // namespace nicsync::fuzz
