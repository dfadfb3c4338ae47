#pragma once
// Shared fixture for the test Vault's own tests: an in-process FakeVault on 127.0.0.1:0 and the
// project's HTTP client, every call under a deadline.

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "fake_vault.hpp"
#include "go_json.hpp"
#include "nicsync/core/clock.hpp"
#include "nicsync/http/client.hpp"
#include "testing/deadline.hpp"

namespace nicsync::fakes::testing {

using namespace std::chrono_literals;

class FakeVaultTest : public ::testing::Test {
 protected:
  void start(FakeVaultOptions o = {}) {
    if (!o.clock) o.clock = &clock_;
    vault_ = std::make_unique<FakeVault>(io_.get_executor(), std::move(o));
    auto started = vault_->start();
    ASSERT_TRUE(started) << started.error().describe();
  }

  void TearDown() override {
    if (vault_) vault_->stop();
    client_.reset();
    nicsync::testing::drain(io_);
    vault_.reset();
    nicsync::testing::drain(io_);
  }

  http::Client& client() {
    if (!client_) client_ = std::make_unique<http::Client>(io_.get_executor(), client_options_);
    return *client_;
  }

  /// One request to the fake; `token` empty sends no token header.
  http::Response call(std::string method, const std::string& path, std::string body = {},
                      std::vector<http::Header> headers = {}, const std::string& token = "root") {
    http::Request r;
    r.method = std::move(method);
    r.url = vault_->address() + path;
    r.body = std::move(body);
    r.headers = std::move(headers);
    if (!token.empty()) r.headers.push_back({"X-Vault-Token", token});
    r.timeout = 10s;
    auto resp = nicsync::testing::run_for(io_, client().request(std::move(r)), 15s);
    if (!resp) {
      ADD_FAILURE() << "request failed: " << resp.error().describe();
      return {};
    }
    return std::move(*resp);
  }

  /// The response body parsed (Go semantics); fails the test if it is not JSON.
  static GoValue json(const http::Response& r) {
    auto v = parse_go_json(r.body);
    if (!v) {
      ADD_FAILURE() << "not JSON: " << r.body;
      return {};
    }
    return std::move(*v);
  }

  /// Follows a dotted path of object keys ("data.metadata.version").
  static GoValue at(const GoValue& v, const std::string& dotted) {
    const GoValue* cur = &v;
    std::size_t start = 0;
    while (cur && start <= dotted.size()) {
      auto dot = dotted.find('.', start);
      cur = cur->find(dotted.substr(start, dot - start));
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return cur ? *cur : GoValue();
  }

  /// Replaces request ids, RFC 3339 times, unix times and other per-run values by placeholders
  /// so bodies can be compared byte for byte.
  static std::string mask(std::string body) {
    static const std::regex kUuid(R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
    static const std::regex kTime(R"("\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")");
    body = std::regex_replace(body, kTime, "\"<time>\"");
    body = std::regex_replace(body, kUuid, "<uuid>");
    return body;
  }

  ManualClock clock_;
  boost::asio::io_context io_;
  http::ClientOptions client_options_;
  std::unique_ptr<FakeVault> vault_;
  std::unique_ptr<http::Client> client_;
};

}  // namespace nicsync::fakes::testing
