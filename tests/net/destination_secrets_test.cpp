// Planted passwords, client secrets, static and access tokens and webhook secrets must never
// reach an error message or a log line, whatever the provider answers, even when the provider
// echoes them back.
#include "destination_fixture.hpp"
#include "nicsync/destinations/cleartax.hpp"
#include "nicsync/destinations/webhook.hpp"

namespace nicsync::destinations::test {
namespace {

using fakes::FakeClearTax;
using fakes::FaultAction;

constexpr std::string_view kPassword = "PLANTED-password-1a2b#X";
constexpr std::string_view kHookSecret = "PLANTED-hook-secret-3c4d";

class SecretsTest : public DestinationTest {};

TEST_F(SecretsTest, NoSecretInAnyMessageOrLogLine) {
  LogCapture log;
  std::vector<std::string> messages;
  auto note = [&](const Result<void>& r) {
    if (!r) messages.push_back(r.error().describe());
  };
  const Gstin g = gstin("07AAFCD5862R1ZX");
  const std::string store(FakeClearTax::kStorePath);
  const std::string token_path(FakeClearTax::kTokenPath);

  ClearTaxConfig cc;
  cc.name = "ct";
  cc.base_url = fake_->base_url();
  cc.state_dir = dir_.path().string();
  cc.token_calls_per_hour = 100;
  cc.push_timeout = 500ms;
  auto ct = ClearTaxDestination::create(io_.get_executor(), client_, cc, provider_of(secret_), clock_).value();

  auto static_state = std::make_shared<ProviderState>();
  static_state->value = kStaticToken;
  ClearTaxConfig sc = cc;
  sc.name = "ct-static";
  sc.auth = ClearTaxAuth::static_token;
  auto st = ClearTaxDestination::create(io_.get_executor(), client_, sc, provider_of(static_state), clock_).value();

  auto hook_state = std::make_shared<ProviderState>();
  hook_state->value = kHookSecret;
  WebhookConfig wc;
  wc.name = "hook";
  wc.url = fake_->base_url() + "/hooks/{gstin}";
  wc.timeout = 500ms;
  wc.secret_headers = {{.name = "Authorization", .prefix = "Bearer ", .value = provider_of(hook_state)}};
  auto wh = WebhookDestination::create(io_.get_executor(), client_, wc).value();

  auto push_all_three = [&](std::int64_t version) {
    for (Destination* d : std::initializer_list<Destination*>{ct.get(), st.get(), wh.get()}) {
      note(push(*d, delivery_for(d->name(), g, version), credential("API_DEMO", kPassword)));
    }
  };

  push_all_three(1);
  // The provider echoes the password (and the username) in its error message.
  fake_->add_bad_credentials(
      {.gstin = g.str(), .code = "1019", .message = fmt::format("Incorrect Password {}", kPassword)});
  fake_->add_bad_credentials({.gstin = g.str(), .code = "9999", .message = fmt::format("odd {}", kPassword)});
  push_all_three(2);
  fake_->clear_bad_credentials();
  fake_->add_bad_credentials({.gstin = g.str(), .code = "9999", .message = fmt::format("odd {}", kPassword)});
  push_all_three(3);
  fake_->clear_bad_credentials();
  for (auto action : {FaultAction::success_false, FaultAction::hang, FaultAction::drop, FaultAction::truncate}) {
    fake_->add_fault({.path = "", .times = 6, .action = action, .truncate_at = 5, .code = "301"});
    push_all_three(4);
    fake_->clear_faults();
    fake_->release_hangs();
  }
  // (Not on the token path: a 429 there would end the day's token calls, as it should.)
  for (int status : {400, 401, 429, 500, 503}) {
    for (std::string path : {store, std::string("/hooks/*")})
      fake_->add_fault({.path = path, .times = 0, .status = status});
    push_all_three(5);
    fake_->clear_faults();
  }
  fake_->add_fault({.path = token_path, .status = 401});
  push_all_three(5);
  fake_->add_fault({.path = "", .times = 0, .status = 200, .body = fmt::format(R"({{"echo":"{}"}})", kPassword)});
  push_all_three(6);
  fake_->clear_faults();
  fake_->set_hook_response("/hooks/*", {.status = 422, .body = fmt::format("bad {} {}", kPassword, kHookSecret)});
  push_all_three(7);
  fake_->revoke_tokens();
  fake_->revoke_auth_token(kStaticToken);
  push_all_three(8);
  secret_->value = "PLANTED-wrong-client-secret";
  fake_->revoke_tokens();
  push_all_three(9);
  note(testing::run_for(io_, ct->probe(), 10s));

  ASSERT_GE(messages.size(), 20u);
  std::vector<std::string> planted = {std::string(kPassword), kClientSecret, kStaticToken,
                                      "PLANTED-wrong-client-secret", std::string(kHookSecret)};
  const auto tokens = fake_->issued_tokens();
  ASSERT_GE(tokens.size(), 2u);
  planted.insert(planted.end(), tokens.begin(), tokens.end());
  const std::string logged = log.text();
  EXPECT_NE(logged.find("new ClearTax access token"), std::string::npos) << "the capture saw nothing";
  EXPECT_NE(logged.find("push failed"), std::string::npos);
  for (const auto& secret : planted) {
    EXPECT_EQ(logged.find(secret), std::string::npos) << "log holds " << secret;
    for (const auto& m : messages) EXPECT_EQ(m.find(secret), std::string::npos) << m;
  }
  // Provider text is quoted, with the secret cut out.
  bool quoted = false;
  for (const auto& m : messages) quoted = quoted || m.find("Incorrect Password ***") != std::string::npos;
  EXPECT_TRUE(quoted);
}

}  // namespace
}  // namespace nicsync::destinations::test
