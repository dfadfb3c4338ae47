// The test Vault's server modes and faults: sealed, standby and sys/health, injected statuses,
// drops, redirects, rate limits, latency, the request log, the admin API, path cleaning,
// namespaces and X-Vault-Index (Enterprise), TLS, and the standalone program.
#include <csignal>

#include "fake_vault_harness.hpp"
#include "testing/pki.hpp"
#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::fakes::testing {
namespace {

class FakeVaultModes : public FakeVaultTest {
 protected:
  void SetUp() override { start(); }
};

TEST_F(FakeVaultModes, SealedAnswers503EverywhereButHealth) {
  vault_->kv_put("secret", "k", {{"a", "b"}});
  vault_->seal();
  for (const auto& path :
       {"/v1/secret/data/k", "/v1/auth/token/lookup-self", "/v1/sys/internal/ui/mounts/secret/k", "/v1/nomount/x"}) {
    auto r = call("GET", path);
    EXPECT_EQ(r.status, 503) << path;
    EXPECT_EQ(r.body, "{\"errors\":[\"Vault is sealed\"]}\n") << path;
  }
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"x"})", {}, "").status, 503);
  auto h = call("GET", "/v1/sys/health", {}, {}, "");
  EXPECT_EQ(h.status, 503);
  EXPECT_EQ(mask(h.body).find("cluster_name"), std::string::npos);
  EXPECT_NE(h.body.find(R"("sealed":true,"standby":true)"), std::string::npos) << h.body;
  EXPECT_EQ(call("GET", "/v1/sys/health?sealedcode=299", {}, {}, "").status, 299);
  vault_->unseal();
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 200);
}

TEST_F(FakeVaultModes, HealthStatusesAndOverrides) {
  auto h = call("GET", "/v1/sys/health", {}, {}, "");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.header("Content-Type"), "application/json");
  EXPECT_EQ(h.header("Cache-Control"), "no-store");
  vault_->set_standby(true);
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 429);
  EXPECT_EQ(call("GET", "/v1/sys/health?standbyok=true", {}, {}, "").status, 200);
  EXPECT_EQ(call("GET", "/v1/sys/health?standbycode=200", {}, {}, "").status, 200);
  EXPECT_EQ(call("GET", "/v1/sys/health?standbyok=1&standbycode=472", {}, {}, "").status, 200);
  auto bad = call("GET", "/v1/sys/health?standbyok=yes", {}, {}, "");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("GET", "/v1/sys/health?activecode=abc", {}, {}, "").body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("GET", "/v1/secret/metadata/x").status, 404) << "a standby forwards other requests";
  auto head = call("HEAD", "/v1/sys/health", {}, {}, "");
  EXPECT_EQ(head.status, 429);
  EXPECT_TRUE(head.body.empty());
  vault_->set_health_flags({.ha_unhealthy = true});
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 474);
  vault_->set_standby(false);
  vault_->set_health_flags({.performance_standby = true});
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 473);
  EXPECT_EQ(call("GET", "/v1/sys/health?perfstandbyok=true", {}, {}, "").status, 200);
  vault_->set_health_flags({.dr_secondary = true});
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 472);
  vault_->set_health_flags({.removed_from_cluster = true});
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 530);
  vault_->set_health_flags({.initialized = false});
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 501);
  EXPECT_EQ(call("GET", "/v1/sys/health?uninitcode=200", {}, {}, "").status, 200);
}

TEST_F(FakeVaultModes, InjectedStatuses) {
  vault_->kv_put("secret", "k", {{"a", "b"}});
  vault_->fail_next(2, 429);
  auto r = call("GET", "/v1/secret/data/k");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body, "{\"errors\":[\"request path \\\"secret/data/k\\\": rate limit quota exceeded\"]}\n");
  EXPECT_FALSE(r.header("Retry-After")) << "no Retry-After unless asked for";
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 429);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 200);
  vault_->fail_next(1, 429, 7);
  r = call("GET", "/v1/secret/data/k");
  EXPECT_EQ(r.header("Retry-After"), "7");
  vault_->fail_next(1, 412);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").body, "{\"errors\":[\"required index state not present\"]}\n");
  vault_->fail_next(1, 503);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").body, "{\"errors\":[\"Vault is sealed\"]}\n");
  vault_->fail_next(1, 500);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 500);
  vault_->fail_next(1, 502);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 502);
  vault_->fail_next({.status = 500, .body = std::string("not json")});
  EXPECT_EQ(call("GET", "/v1/secret/data/k").body, "not json");
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 200);
}

TEST_F(FakeVaultModes, DropsResetsTruncationAndRedirects) {
  vault_->kv_put("secret", "k", {{"a", "b"}});
  auto raw = [&](const std::string& path) {
    http::Request req;
    req.url = vault_->address() + path;
    req.headers = {{"X-Vault-Token", "root"}};
    req.timeout = std::chrono::seconds(5);
    return nicsync::testing::run_for(io_, client().request(req), std::chrono::seconds(10));
  };
  vault_->fail_next({.kind = FaultSpec::Kind::drop});
  auto dropped = raw("/v1/secret/data/k");
  ASSERT_FALSE(dropped);
  vault_->fail_next({.kind = FaultSpec::Kind::reset});
  EXPECT_FALSE(raw("/v1/secret/data/k"));
  vault_->fail_next({.kind = FaultSpec::Kind::truncate, .truncate_at = 10});
  auto truncated = raw("/v1/secret/data/k");
  EXPECT_FALSE(truncated && truncated->body.size() > 10);
  EXPECT_EQ(raw("/v1/secret/data/k")->status, 200);

  vault_->fail_next({.kind = FaultSpec::Kind::redirect, .location = "http://127.0.0.1:1"});
  auto r = call("GET", "/v1/secret/data/k?version=1");
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.header("Location"), "http://127.0.0.1:1/v1/secret/data/k?version=1");
  EXPECT_TRUE(r.body.empty());
  vault_->set_redirect("https://active.example:8200");
  r = call("GET", "/v1/secret/metadata/k");
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.header("Location"), "https://active.example:8200/v1/secret/metadata/k");
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200) << "health is never redirected";
  r = call("GET", "/v1/sys/events/subscribe/kv-v2/*?json=true");
  EXPECT_EQ(r.header("Location"), "wss://active.example:8200/v1/sys/events/subscribe/kv-v2/*?json=true");
  vault_->set_redirect(std::nullopt);
  EXPECT_EQ(call("GET", "/v1/secret/metadata/k").status, 200);
}

TEST_F(FakeVaultModes, RateLimitQuota) {
  vault_->set_rate_limit(2, std::chrono::seconds(60));
  EXPECT_EQ(call("GET", "/v1/secret/metadata/x").status, 404);
  EXPECT_EQ(call("GET", "/v1/secret/metadata/x").status, 404);
  auto r = call("GET", "/v1/secret/metadata/x");
  EXPECT_EQ(r.status, 429);
  EXPECT_FALSE(r.header("Retry-After"));
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200) << "sys/health is exempt";
  vault_->set_rate_limit(1, std::chrono::seconds(60), true);
  r = call("GET", "/v1/secret/metadata/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.header("X-Ratelimit-Limit"), "1");
  EXPECT_EQ(r.header("X-Ratelimit-Remaining"), "0");
  r = call("GET", "/v1/secret/metadata/x");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "60");
  clock_.advance(std::chrono::seconds(60));
  EXPECT_EQ(call("GET", "/v1/secret/metadata/x").status, 404);
}

TEST_F(FakeVaultModes, LatencyMakesAClientTimeOut) {
  vault_->set_latency(std::chrono::milliseconds(400));
  http::Request req;
  req.url = vault_->address() + "/v1/sys/health";
  req.timeout = std::chrono::milliseconds(100);
  auto r = nicsync::testing::run_for(io_, client().request(req), std::chrono::seconds(5));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().is(Errc::http_timeout)) << r.error().describe();
  vault_->set_latency(std::chrono::milliseconds(0));
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
}

TEST_F(FakeVaultModes, RequestLogCountsCallsAndHoldsNoTokens) {
  const auto token = vault_->create_token({});
  vault_->clear_request_log();
  call("PUT", "/v1/auth/token/renew-self", "{}", {}, token);
  call("PUT", "/v1/auth/token/renew-self", "{}", {}, token);
  call("GET", "/v1/secret/data/x?version=2");
  EXPECT_EQ(vault_->count_requests("PUT", "/v1/auth/token/renew-self"), 2u);
  const auto log = vault_->request_log();
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[2].path, "/v1/secret/data/x");
  EXPECT_EQ(log[2].status, 404);
  EXPECT_EQ(log[0].status, 200);
  for (const auto& e : log) EXPECT_EQ(e.path.find(token), std::string::npos);
  // Even a token put into the URL stays out of the log.
  call("GET", "/v1/auth/token/lookup/" + token);
  EXPECT_EQ(vault_->request_log().back().path, "/v1/auth/token/lookup/<token>");
}

TEST_F(FakeVaultModes, AdminApi) {
  auto admin = [&](const std::string& path, const std::string& body) {
    return call("POST", "/__admin/" + path, body, {}, "");
  };
  EXPECT_EQ(admin("seal", "").status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/data/x").status, 503);
  EXPECT_EQ(admin("unseal", "").status, 200);
  EXPECT_EQ(admin("fail", R"({"count":1,"status":429,"retry_after":3})").status, 200);
  auto r = call("GET", "/v1/secret/data/x");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("Retry-After"), "3");
  EXPECT_EQ(admin("standby", R"({"standby":true})").status, 200);
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 429);
  admin("standby", R"({"standby":false})");
  EXPECT_EQ(admin("policies", R"({"name":"p","rules":{"secret/data/*":["read"]}})").status, 200);
  auto tok = json(admin("tokens", R"({"policies":["p"],"ttl":"1h"})"));
  const auto token = at(tok, "token").text();
  EXPECT_EQ(admin("kv", R"({"mount":"secret","key":"a","data":{"u":"v"}})").body, "{\"version\":1}\n");
  EXPECT_EQ(call("GET", "/v1/secret/data/a", {}, {}, token).status, 200);
  EXPECT_EQ(admin("revoke", R"({"token":")" + token + "\"}").status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/data/a", {}, {}, token).status, 403);
  EXPECT_EQ(admin("approles", R"({"role":"r","role_id":"rid","secret_id":"s1","policies":["p"]})").status, 200);
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"rid","secret_id":"s1"})", {}, "").status, 200);
  EXPECT_EQ(admin("approles/rotate", R"({"role":"r","secret_id":"s2"})").status, 200);
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"rid","secret_id":"s1"})", {}, "").status, 400);
  EXPECT_EQ(admin("mounts", R"({"path":"other","version":1})").status, 200);
  EXPECT_EQ(call("PUT", "/v1/other/x", R"({"a":"b"})").status, 204);
  auto log = json(call("GET", "/__admin/requests", {}, {}, ""));
  EXPECT_GE(at(log, "requests").items().size(), 8u);
  EXPECT_EQ(log.dump().find(token), std::string::npos);
  EXPECT_EQ(call("DELETE", "/__admin/requests", {}, {}, "").status, 200);
  EXPECT_TRUE(vault_->request_log().empty()) << "admin calls are not logged";
  auto stats = json(call("GET", "/__admin/stats", {}, {}, ""));
  EXPECT_GE(at(stats, "connections_accepted").as_int().value_or(0), 1);
  EXPECT_EQ(call("POST", "/__admin/frobnicate", "", {}, "").status, 404);
  EXPECT_EQ(admin("drop-connections", "").status, 200);
}

TEST_F(FakeVaultModes, DropConnectionsClosesKeptAliveConnections) {
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
  EXPECT_EQ(vault_->connections_accepted(), 1u);
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
  EXPECT_EQ(vault_->connections_accepted(), 1u) << "keep-alive";
  vault_->drop_connections();
  nicsync::testing::drain(io_);
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
  EXPECT_EQ(vault_->connections_accepted(), 2u);
}

TEST_F(FakeVaultModes, PathCleaningAndNonApiPaths) {
  auto r = call("GET", "/v1/secret//data/x?version=1");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "/v1/secret/data/x?version=1");
  EXPECT_EQ(r.body, "<a href=\"/v1/secret/data/x?version=1\">Moved Permanently</a>.\n\n");
  r = call("GET", "/ui/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"errors\":[]}\n");
  r = call("OPTIONS", "/v1/secret/data/x");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, "{\"errors\":[]}\n");
  r = call("PUT", "/v1/secret/data/x", "{bad");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"errors\":[\"failed to parse JSON input: invalid character 'b' looking for beginning of object key "
            "string\"]}\n");
  r = call("PUT", "/v1/secret/data/x", "[1]");
  EXPECT_EQ(r.body,
            "{\"errors\":[\"failed to parse JSON input: json: cannot unmarshal array into Go value of type "
            "map[string]interface {}\"]}\n");
}

TEST_F(FakeVaultModes, NamespaceHeaderIsEchoedAndIgnoredInCommunityMode) {
  vault_->kv_put("secret", "k", {{"a", "b"}});
  auto r = call("GET", "/v1/secret/data/k", {}, {{"X-Vault-Namespace", "team-a/"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Vault-Namespace"), "team-a/");
  EXPECT_FALSE(r.header("X-Vault-Index"));
  EXPECT_FALSE(call("PUT", "/v1/secret/data/k", R"({"data":{"a":"c"}})").header("X-Vault-Index"));
  EXPECT_FALSE(call("GET", "/v1/secret/data/k").header("X-Vault-Namespace"));
}

TEST_F(FakeVaultModes, EnterpriseNamespacesAndIndex) {
  vault_->stop();
  FakeVaultOptions o;
  o.enterprise = true;
  start(o);
  vault_->create_namespace("team-a");
  vault_->mount("team-a/secret", 2);
  auto w = call("PUT", "/v1/secret/data/k", R"({"data":{"a":"ns"}})", {{"X-Vault-Namespace", "team-a"}});
  ASSERT_EQ(w.status, 200) << w.body;
  ASSERT_TRUE(w.header("X-Vault-Index"));
  EXPECT_EQ(w.header("X-Vault-Namespace"), "team-a");
  // The same key through the path prefix; the root namespace's secret/ does not have it.
  EXPECT_EQ(at(json(call("GET", "/v1/team-a/secret/data/k")), "data.data.a").text(), "ns");
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 404);
  EXPECT_EQ(
      at(json(call("GET", "/v1/sys/internal/ui/mounts/secret/k", {}, {{"X-Vault-Namespace", "team-a/"}})), "data.path")
          .text(),
      "secret/");
  // An index from the future is not present on this node: 412 unless forwarded.
  const std::string future = "djE6Y2x1c3Rlcjo5OTk5OTo5OTk5OTphYmNk";  // v1:cluster:99999:99999:abcd
  auto r = call("GET", "/v1/secret/data/k", {}, {{"X-Vault-Index", future}});
  EXPECT_EQ(r.status, 412);
  EXPECT_EQ(r.body, "{\"errors\":[\"required index state not present\"]}\n");
  r = call("GET", "/v1/secret/data/k", {},
           {{"X-Vault-Index", future}, {"X-Vault-Inconsistent", "forward-active-node"}});
  EXPECT_EQ(r.status, 404);
  r = call("GET", "/v1/team-a/secret/data/k", {}, {{"X-Vault-Index", std::string(*w.header("X-Vault-Index"))}});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(call("GET", "/v1/sys/health", {}, {}, "").body.find(R"("version":"1.19.0+ent","enterprise":true)"),
            std::string::npos);
}

TEST_F(FakeVaultModes, ServesTlsAndRequiresClientCertificatesWhenAsked) {
  nicsync::testing::TempDir dir;
  auto pki = nicsync::testing::make_test_pki(dir.path().string());
  vault_->stop();
  FakeVaultOptions o;
  o.tls_cert_file = pki.server_cert;
  o.tls_key_file = pki.server_key;
  start(o);
  EXPECT_TRUE(vault_->address().starts_with("https://127.0.0.1:"));
  client_options_.tls.ca_file = pki.ca_cert;
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
  client_.reset();

  vault_->stop();
  o.tls_client_ca_file = pki.ca_cert;
  start(o);
  http::Request req;
  req.url = vault_->address() + "/v1/sys/health";
  auto refused = nicsync::testing::run_for(io_, client().request(req), std::chrono::seconds(10));
  EXPECT_FALSE(refused && refused->status == 200) << "no client certificate";
  client_.reset();
  client_options_.tls.client_cert = pki.client_cert;
  client_options_.tls.client_key = pki.client_key;
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 200);
}

TEST(FakeVaultProgram, ServesUntilSigterm) {
  nicsync::testing::Process p({.argv = {nicsync::testing::built_program("tests/fakes/vault/nicsync-test-vault"),
                                        "--listen", "127.0.0.1:0", "--root-token", "s3cret-root"}});
  auto end = p.wait_for_output("\n", std::chrono::seconds(10));
  ASSERT_TRUE(end) << p.output();
  const std::string line = p.output().substr(0, *end - 1);
  ASSERT_TRUE(line.starts_with("listening on http://127.0.0.1:")) << line;
  const std::string address = line.substr(13);

  boost::asio::io_context io;
  http::Client client(io.get_executor());
  auto request = [&](std::string method, std::string path, std::string body, std::string token) {
    http::Request r;
    r.method = std::move(method);
    r.url = address + path;
    r.body = std::move(body);
    if (!token.empty()) r.headers.push_back({"X-Vault-Token", token});
    return nicsync::testing::run_for(io, client.request(r), std::chrono::seconds(10));
  };
  auto w = request("PUT", "/v1/secret/data/nic/A", R"({"data":{"password":"p"}})", "s3cret-root");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200) << w->body;
  EXPECT_EQ(request("GET", "/v1/secret/data/nic/A", "", "root")->status, 403);
  EXPECT_EQ(request("PUT", "/v1/kv/x", R"({"a":"b"})", "s3cret-root")->status, 204) << "kv/ is mounted";
  EXPECT_EQ(request("POST", "/__admin/seal", "", "")->status, 200);
  EXPECT_EQ(request("GET", "/v1/sys/health", "", "")->status, 503);
  client.shutdown();
  nicsync::testing::drain(io);
  p.signal(SIGTERM);
  EXPECT_EQ(p.wait(std::chrono::seconds(10)), 0) << p.output();
  EXPECT_EQ(p.output(), line + "\n") << "exactly one line on stdout and nothing else";
}

}  // namespace
}  // namespace nicsync::fakes::testing
