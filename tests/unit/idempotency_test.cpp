#include "nicsync/sync/idempotency.hpp"

#include <set>

#include <gtest/gtest.h>

namespace nicsync::sync {
namespace {

TEST(IdempotencyKey, StableAndDistinctPerPart) {
  const auto g = Gstin::parse("07AAFCD5862R1ZX").value();
  const auto base = idempotency_key("cleartax", g, "secret/nic/07AAFCD5862R1ZX", "2025-03-01T12:00:00.5Z", 3);
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(base, idempotency_key("cleartax", g, "secret/nic/07AAFCD5862R1ZX", "2025-03-01T12:00:00.5Z", 3));
  std::set<std::string> keys{base};
  keys.insert(idempotency_key("webhook", g, "secret/nic/07AAFCD5862R1ZX", "2025-03-01T12:00:00.5Z", 3));
  keys.insert(idempotency_key("cleartax", Gstin::parse("27AAPFU0939F1ZV").value(), "secret/nic/07AAFCD5862R1ZX",
                              "2025-03-01T12:00:00.5Z", 3));
  keys.insert(idempotency_key("cleartax", g, "secret/nic/other", "2025-03-01T12:00:00.5Z", 3));
  keys.insert(idempotency_key("cleartax", g, "secret/nic/07AAFCD5862R1ZX", "2025-04-01T00:00:00Z", 3));
  keys.insert(idempotency_key("cleartax", g, "secret/nic/07AAFCD5862R1ZX", "2025-03-01T12:00:00.5Z", 4));
  EXPECT_EQ(keys.size(), 6u);
  // Length prefixes: moving a character between parts changes the key.
  EXPECT_NE(idempotency_key("ab", g, "c", "", 1), idempotency_key("a", g, "bc", "", 1));
}

}  // namespace
}  // namespace nicsync::sync
