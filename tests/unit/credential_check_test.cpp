// What a credential field read from Vault must look like before it is pushed anywhere: each
// refusal names the path and the field and says what to fix, never the value.
#include <gtest/gtest.h>

#include "app/vault_sources.hpp"

namespace nicsync::app {
namespace {

TEST(CredentialCheck, AcceptsOrdinaryValues) {
  for (const char* v : {"API_DEMO_USER", "N3w#Passw0rd", "pässwört-ü-€-𝄞", "a b c", "x"}) {
    EXPECT_TRUE(check_credential_field("secret/nic/X version 2", "password", v, 1024)) << v;
  }
}

TEST(CredentialCheck, RefusesWhatCannotBeTheIntendedPassword) {
  struct Case {
    std::string value, expected;
  };
  const std::vector<Case> cases = {
      {"", "is empty"},
      {std::string(1025, 'p'), "is 1025 bytes long (at most 1024 are accepted)"},
      {"Secret-\xff\xfe", "is not valid UTF-8"},
      {"Secret-\xc0\xaf", "is not valid UTF-8"},          // overlong '/'
      {"Secret-\xed\xa0\x80", "is not valid UTF-8"},      // a surrogate
      {"Secret-\xf4\x90\x80\x80", "is not valid UTF-8"},  // above U+10FFFF
      {"Secret-\xe2\x82", "is not valid UTF-8"},          // cut short
      {"Secret-\xef\xbf\xbd-latin1", "contains U+FFFD"},  // what Vault stores for bytes that are not UTF-8
      {"Secret-line\n", "contains a control character"},  // a trailing newline from a file
      {std::string("Secret-\0-nul", 12), "contains a control character"},
      {"Secret-\x7f", "contains a control character"},
  };
  for (const auto& c : cases) {
    auto r = check_credential_field("secret/nic/27AAPFU0939F1ZV version 3", "password", c.value, 1024);
    ASSERT_FALSE(r) << c.expected;
    EXPECT_TRUE(r.error().is(Errc::vault_secret_malformed));
    EXPECT_NE(r.error().message.find("secret/nic/27AAPFU0939F1ZV version 3: field \"password\" " + c.expected),
              std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("write a corrected version to Vault"), std::string::npos);
    EXPECT_EQ(r.error().message.find("Secret-"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace nicsync::app
