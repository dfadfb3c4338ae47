#include "nicsync/core/error.hpp"

#include <gtest/gtest.h>

#include "nicsync/core/result.hpp"

namespace nicsync {
namespace {

TEST(Error, ClassifiesEveryFamilyAsArchitectureSays) {
  EXPECT_EQ(classify(Errc::http_timeout), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::http_connection_refused), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::http_network), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::vault_sealed), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::vault_rate_limited), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::dest_unavailable), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::dest_rate_limited), ErrorClass::transient);
  EXPECT_EQ(classify(Errc::dest_unknown_code), ErrorClass::transient);

  EXPECT_EQ(classify(Errc::vault_token_invalid), ErrorClass::auth);
  EXPECT_EQ(classify(Errc::vault_permission_denied), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::dest_unauthorized), ErrorClass::auth);

  EXPECT_EQ(classify(Errc::dest_gstin_not_linked), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::dest_wrong_gsp), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::dest_gstin_inactive), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::dest_no_access), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::http_tls_verify), ErrorClass::permanent);
  EXPECT_EQ(classify(Errc::config_invalid), ErrorClass::permanent);

  EXPECT_EQ(classify(Errc::dest_credential_rejected), ErrorClass::credential_rejected);
  EXPECT_EQ(classify(std::error_code{}), ErrorClass::none);
}

TEST(Error, ForeignCodesAreClassifiedBySymptom) {
  EXPECT_EQ(classify(std::make_error_code(std::errc::connection_reset)), ErrorClass::transient);
  EXPECT_EQ(classify(std::make_error_code(std::errc::timed_out)), ErrorClass::transient);
  EXPECT_EQ(classify(std::make_error_code(std::errc::permission_denied)), ErrorClass::permanent);
}

TEST(Error, CategoryNamesAndMessages) {
  std::error_code ec = Errc::vault_sealed;
  EXPECT_STREQ(ec.category().name(), "nicsync");
  EXPECT_EQ(ec.message(), "Vault is sealed");
  EXPECT_EQ(errc_name(Errc::dest_wrong_gsp), "dest_wrong_gsp");
  EXPECT_EQ(to_string(ErrorClass::credential_rejected), "credential_rejected");
}

TEST(Error, DescribeCombinesMessageAndCode) {
  Error e(Errc::dest_credential_rejected, "NIC 1019: incorrect password");
  EXPECT_EQ(e.describe(), "NIC 1019: incorrect password (dest_credential_rejected)");
  EXPECT_EQ(fmt::format("{}", e), e.describe());
  Error bare(Errc::vault_sealed);
  EXPECT_EQ(bare.describe(), "Vault is sealed (vault_sealed)");
  EXPECT_TRUE(bare.is(Errc::vault_sealed));
  EXPECT_EQ(bare.error_class(), ErrorClass::transient);
}

Result<int> half(int x) {
  if (x % 2 != 0) return Error(Errc::invalid_argument, "odd");
  return x / 2;
}

TEST(Result, CarriesValueOrError) {
  auto good = half(4);
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 2);
  auto bad = half(3);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().is(Errc::invalid_argument));
  EXPECT_THROW((void)bad.value(), std::system_error);
  try {
    (void)bad.value();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), make_error_code(Errc::invalid_argument));
    EXPECT_NE(std::string(e.what()).find("odd"), std::string::npos);
  }
}

}  // namespace
}  // namespace nicsync
