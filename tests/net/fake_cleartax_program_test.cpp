// nicsync-test-cleartax as a process: it announces its address on one line, serves the token
// endpoint, store_nic_credentials and the admin API (plain and TLS), and exits 0 on SIGTERM.
#include <signal.h>

#include <cstdlib>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"
#include "testing/pki.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

const std::string kProgram = "tests/fakes/cleartax/nicsync-test-cleartax";

// Starts the program and returns its base URL from the "listening on" line.
std::string wait_listening(testing::Process& p) {
  auto end = p.wait_for_output("\n", 10s);
  EXPECT_TRUE(end) << p.output();
  const auto out = p.output();
  const std::string prefix = "listening on ";
  EXPECT_EQ(out.rfind(prefix, 0), 0u) << out;
  return out.substr(prefix.size(), out.find('\n') - prefix.size());
}

class FakeClearTaxProgramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"}) {
      ::unsetenv(v);
    }
  }

  http::Response call(http::Client& client, http::Request r) {
    auto resp = testing::run_for(io_, client.request(std::move(r)), 10s);
    EXPECT_TRUE(resp) << resp.error().describe();
    return resp ? std::move(*resp) : http::Response{};
  }

  // Token, store, read back through the admin API, then SIGTERM.
  void exercise(testing::Process& p, const std::string& base, http::Client& client) {
    http::Request token;
    token.url = base + "/integration/v1/authz/token";
    token.headers = {{"x-clear-client-secret", "program-secret"}};
    auto t = call(client, token);
    ASSERT_EQ(t.status, 200) << t.body;
    auto tj = json::parse(t.body).as_object();
    EXPECT_TRUE(tj.at("valid_till").is_null());  // --token-validity never

    http::Request store;
    store.method = "POST";
    store.url = base + "/einv/v2/nic_credentials/store_nic_credentials";
    store.headers = {{"x-cleartax-auth-token", std::string(tj.at("access_token").as_string())},
                     {"x-cleartax-product", "EInvoice"},
                     {"Content-Type", "application/json"},
                     {"gstin", "07AAFCD5862R1ZX"}};
    store.body = R"({"gstin":"07AAFCD5862R1ZX","username":"API_DEMO","password":"Prog#pass1"})";
    auto s = call(client, store);
    EXPECT_EQ(s.body, R"({"success":true,"errorDetails":null})");
    store.headers[0].value = "program-static";
    EXPECT_EQ(call(client, store).status, 200);

    http::Request admin;
    admin.url = base + "/__admin/stored/07AAFCD5862R1ZX";
    auto a = call(client, admin);
    ASSERT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(json::parse(a.body).at("password").as_string(), "Prog#pass1");
    EXPECT_EQ(json::parse(a.body).at("stores").as_int64(), 2);

    p.signal(SIGTERM);
    auto code = p.wait(10s);
    ASSERT_TRUE(code.has_value()) << p.output();
    EXPECT_EQ(*code, 0) << p.output();
    // Exactly one line of output, and no secret in it.
    const auto out = p.output();
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(out.find("program-secret"), std::string::npos);
  }

  boost::asio::io_context io_;
};

TEST_F(FakeClearTaxProgramTest, PlainHttp) {
  testing::Process p({.argv = {testing::built_program(kProgram), "--listen", "127.0.0.1:0", "--client-secret",
                               "program-secret", "--auth-token", "program-static", "--token-validity", "never"}});
  const auto base = wait_listening(p);
  ASSERT_TRUE(base.starts_with("http://127.0.0.1:")) << base;
  http::Client client(io_.get_executor());
  exercise(p, base, client);
  client.shutdown();
  testing::drain(io_);
}

TEST_F(FakeClearTaxProgramTest, Tls) {
  testing::TempDir dir;
  auto pki = testing::make_test_pki(dir.path().string());
  testing::Process p({.argv = {testing::built_program(kProgram), "--listen", "127.0.0.1:0", "--tls-cert",
                               pki.server_cert, "--tls-key", pki.server_key, "--client-secret", "program-secret",
                               "--auth-token", "program-static", "--token-validity", "never"}});
  const auto base = wait_listening(p);
  ASSERT_TRUE(base.starts_with("https://127.0.0.1:")) << base;
  http::ClientOptions options;
  options.tls.ca_file = pki.ca_cert;
  http::Client client(io_.get_executor(), options);
  exercise(p, base, client);
  client.shutdown();
  testing::drain(io_);
}

TEST_F(FakeClearTaxProgramTest, BadArgumentsFail) {
  testing::Process bad_validity({.argv = {testing::built_program(kProgram), "--token-validity", "soon"}});
  EXPECT_EQ(bad_validity.wait(10s), 2);
  testing::Process bad_listen({.argv = {testing::built_program(kProgram), "--listen", "nowhere"}});
  auto code = bad_listen.wait(10s);
  ASSERT_TRUE(code);
  EXPECT_NE(*code, 0);
}

}  // namespace
}  // namespace nicsync
