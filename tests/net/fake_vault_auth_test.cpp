// The test Vault's token store, policies and AppRole login over real loopback HTTP, with token
// lifetimes driven by a manual clock.
#include "fake_vault_harness.hpp"

namespace nicsync::fakes::testing {
namespace {

const std::string kDeadToken =
    "{\"errors\":[\"2 errors occurred:\\n\\t* permission denied\\n\\t* invalid token\\n\\n\"]}\n";
const std::string kDenied = "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}\n";

class FakeVaultAuth : public FakeVaultTest {
 protected:
  void SetUp() override { start(); }
};

TEST_F(FakeVaultAuth, TokenCreateAndLookupSelf) {
  auto r = call("POST", "/v1/auth/token/create",
                R"({"policies":["svc","Default"],"ttl":"1h","display_name":"my app!","num_uses":0,)"
                R"("no_parent":false,"no_default_policy":false,"renewable":true,"meta":{"team":"a"}})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = json(r);
  EXPECT_EQ(at(v, "mount_type").text(), "token");
  EXPECT_EQ(at(v, "data"), GoValue());
  const std::string token = at(v, "auth.client_token").text();
  EXPECT_TRUE(token.starts_with("hvs.")) << token;
  EXPECT_EQ(at(v, "auth.policies").dump(), R"(["default","svc"])");
  EXPECT_EQ(at(v, "auth.token_policies").dump(), R"(["default","svc"])");
  EXPECT_EQ(at(v, "auth.lease_duration").as_int(), 3600);
  EXPECT_EQ(at(v, "auth.metadata").dump(), R"({"team":"a"})");
  EXPECT_EQ(at(v, "auth.token_type").text(), "service");
  EXPECT_EQ(at(v, "auth.orphan").as_bool(), false);
  // Field order of the auth block (logical.HTTPAuth).
  std::string keys;
  const auto auth = at(v, "auth");
  for (const auto& m : auth.members()) keys += m.key + ",";
  EXPECT_EQ(keys,
            "client_token,accessor,policies,token_policies,metadata,lease_duration,renewable,entity_id,token_type,"
            "orphan,mfa_requirement,num_uses,");

  clock_.advance(std::chrono::seconds(100));
  auto look = call("GET", "/v1/auth/token/lookup-self", {}, {}, token);
  ASSERT_EQ(look.status, 200) << look.body;
  auto d = at(json(look), "data");
  std::string fields;
  for (const auto& m : d.members()) fields += m.key + ",";
  EXPECT_EQ(fields,
            "accessor,creation_time,creation_ttl,display_name,entity_id,expire_time,explicit_max_ttl,id,issue_time,"
            "meta,num_uses,orphan,path,policies,renewable,ttl,type,");
  EXPECT_EQ(at(d, "ttl").as_int(), 3500);
  EXPECT_EQ(at(d, "creation_ttl").as_int(), 3600);
  EXPECT_EQ(at(d, "display_name").text(), "token-my-app");
  EXPECT_EQ(at(d, "path").text(), "auth/token/create");
  EXPECT_EQ(at(d, "id").text(), token);
  EXPECT_EQ(at(d, "renewable").as_bool(), true);

  // Integer TTLs are accepted too; a non-root parent cannot hand out other policies.
  auto escalate = call("POST", "/v1/auth/token/create", R"({"policies":["admin"]})", {}, token);
  EXPECT_EQ(escalate.status, 403) << "svc has no policy for auth/token/create";
  vault_->set_policy("svc", {{"auth/token/create", {"update"}}});
  escalate = call("POST", "/v1/auth/token/create", R"({"policies":["admin"]})", {}, token);
  EXPECT_EQ(escalate.body, "{\"errors\":[\"child policies must be subset of parent\"]}\n");
  auto child = call("POST", "/v1/auth/token/create", R"({"policies":["svc"],"ttl":120})", {}, token);
  EXPECT_EQ(at(json(child), "auth.lease_duration").as_int(), 120) << child.body;
}

TEST_F(FakeVaultAuth, RootTokenLookupHasNoLeaseFields) {
  auto r = call("GET", "/v1/auth/token/lookup-self");
  ASSERT_EQ(r.status, 200);
  auto d = at(json(r), "data");
  EXPECT_FALSE(d.find("renewable"));
  EXPECT_FALSE(d.find("issue_time"));
  EXPECT_EQ(at(d, "expire_time"), GoValue());
  EXPECT_EQ(at(d, "ttl").as_int(), 0);
  EXPECT_EQ(at(d, "policies").dump(), R"(["root"])");
  EXPECT_EQ(at(d, "path").text(), "auth/token/root");
  auto renew = call("POST", "/v1/auth/token/renew-self", "{}");
  EXPECT_EQ(renew.status, 400);
  EXPECT_EQ(renew.body, "{\"errors\":[\"invalid lease ID\"]}\n");
  // A root-policy token made through auth/token/create has a lease but it is not renewable.
  auto created = call("POST", "/v1/auth/token/create", "{}");
  const auto token = at(json(created), "auth.client_token").text();
  EXPECT_EQ(at(json(created), "auth.policies").dump(), R"(["root"])");
  renew = call("POST", "/v1/auth/token/renew-self", "{}", {}, token);
  EXPECT_EQ(renew.body, "{\"errors\":[\"lease is not renewable\"]}\n");
}

TEST_F(FakeVaultAuth, RenewSelfExtendsAndCapsAtMaxTtlWithWarning) {
  const auto token = vault_->create_token(
      {.policies = {"svc"}, .ttl = std::chrono::seconds(60), .max_ttl = std::chrono::seconds(1000)});
  clock_.advance(std::chrono::seconds(40));
  auto r = call("PUT", "/v1/auth/token/renew-self", R"({"increment":300})", {}, token);
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = json(r);
  EXPECT_EQ(at(v, "auth.lease_duration").as_int(), 300);
  EXPECT_EQ(at(v, "warnings"), GoValue());
  EXPECT_EQ(at(v, "data"), GoValue());
  EXPECT_EQ(at(v, "mount_type").text(), "token");
  auto look = json(call("GET", "/v1/auth/token/lookup-self", {}, {}, token));
  EXPECT_EQ(at(look, "data.ttl").as_int(), 300);
  EXPECT_TRUE(at(look, "data").find("last_renewal"));
  EXPECT_TRUE(at(look, "data").find("last_renewal_time"));
  // 40 s in, 1000 s max: asking for 1h gives the 960 s left, with Vault's warning.
  r = call("PUT", "/v1/auth/token/renew-self", R"({"increment":"1h"})", {}, token);
  ASSERT_EQ(r.status, 200);
  v = json(r);
  EXPECT_EQ(at(v, "auth.lease_duration").as_int(), 960);
  EXPECT_EQ(at(v, "warnings").dump(),
            R"(["TTL of \"1h0m0s\" exceeded the effective max_ttl of \"16m0s\"; TTL value is capped accordingly"])");
  // Increment 0 (the Go client's default) renews by the token's own TTL.
  clock_.advance(std::chrono::seconds(10));
  r = call("PUT", "/v1/auth/token/renew-self", R"({"increment":0})", {}, token);
  EXPECT_EQ(at(json(r), "auth.lease_duration").as_int(), 60);
  clock_.advance(std::chrono::seconds(1000));
  EXPECT_EQ(call("PUT", "/v1/auth/token/renew-self", "{}", {}, token).body, kDeadToken);

  const auto fixed = vault_->create_token({.renewable = false});
  EXPECT_EQ(call("PUT", "/v1/auth/token/renew-self", "{}", {}, fixed).body,
            "{\"errors\":[\"lease is not renewable\"]}\n");
  auto batch = call("POST", "/v1/auth/token/create", R"({"type":"batch","policies":["svc"]})");
  const auto batch_token = at(json(batch), "auth.client_token").text();
  EXPECT_TRUE(batch_token.starts_with("hvb.")) << batch.body;
  EXPECT_EQ(call("PUT", "/v1/auth/token/renew-self", "{}", {}, batch_token).body,
            "{\"errors\":[\"batch tokens cannot be renewed\"]}\n");
}

TEST_F(FakeVaultAuth, ExpiredRevokedAndUnknownTokens) {
  const auto token = vault_->create_token({.policies = {"svc"}, .ttl = std::chrono::seconds(30)});
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, token).status, 200);
  clock_.advance(std::chrono::seconds(30));
  auto r = call("GET", "/v1/auth/token/lookup-self", {}, {}, token);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, kDeadToken);
  EXPECT_EQ(call("GET", "/v1/secret/data/x", {}, {}, "hvs.unknown").body, kDeadToken);
  r = call("GET", "/v1/secret/data/x", {}, {}, "");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "{\"errors\":[\"permission denied\"]}\n");

  const auto a = vault_->create_token({});
  EXPECT_EQ(call("POST", "/v1/auth/token/revoke-self", "", {}, a).status, 204);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, a).body, kDeadToken);
  const auto b = vault_->create_token({});
  EXPECT_EQ(call("POST", "/v1/auth/token/revoke", R"({"token":")" + b + "\"}").status, 204);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, b).status, 403);
  const auto c = vault_->create_token({});
  vault_->revoke_token(c);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, c).status, 403);
  // A use-limited token dies after its last use.
  const auto once = vault_->create_token({.num_uses = 2});
  EXPECT_EQ(at(json(call("GET", "/v1/auth/token/lookup-self", {}, {}, once)), "data.num_uses").as_int(), 1);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, once).status, 200);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, once).status, 403);
}

TEST_F(FakeVaultAuth, LegacyPermissionDeniedSwitch) {
  vault_->stop();
  FakeVaultOptions o;
  o.legacy_permission_denied = true;
  start(o);
  EXPECT_EQ(call("GET", "/v1/secret/data/x", {}, {}, "nope").body, "{\"errors\":[\"permission denied\"]}\n");
}

TEST_F(FakeVaultAuth, BearerTokenAndHeaderPrecedence) {
  auto r = call("GET", "/v1/auth/token/lookup-self", {}, {{"Authorization", "Bearer root"}}, "");
  EXPECT_EQ(r.status, 200);
  r = call("GET", "/v1/auth/token/lookup-self", {}, {{"Authorization", "Bearer root"}}, "hvs.wrong");
  EXPECT_EQ(r.status, 403) << "X-Vault-Token wins over Authorization";
  r = call("GET", "/v1/auth/token/lookup-self", {}, {{"Authorization", "bearer root"}}, "");
  EXPECT_EQ(r.body, "{\"errors\":[\"permission denied\"]}\n") << "only \"Bearer \" is recognised";
}

TEST_F(FakeVaultAuth, PoliciesLimitPathsAndOperations) {
  vault_->set_policy("nic", {{"secret/data/nic/*", {"read", "create"}},
                             {"secret/data/nic/locked", {"deny"}},
                             {"secret/metadata/nic/", {"list"}},
                             {"secret/metadata/+/A", {"read"}}});
  const auto token = vault_->create_token({.policies = {"nic"}});
  vault_->kv_put("secret", "nic/A", {{"username", "u"}});
  vault_->kv_put("secret", "nic/locked", {{"username", "u"}});
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, token).status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/data/other", {}, {}, token).body, kDenied);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/locked", {}, {}, token).body, kDenied);
  // create (key absent) is allowed, update (key exists) is not.
  EXPECT_EQ(call("PUT", "/v1/secret/data/nic/B", R"({"data":{"a":"1"}})", {}, token).status, 200);
  EXPECT_EQ(call("PUT", "/v1/secret/data/nic/B", R"({"data":{"a":"2"}})", {}, token).body, kDenied);
  EXPECT_EQ(call("LIST", "/v1/secret/metadata/nic", {}, {}, token).status, 200);
  EXPECT_EQ(call("LIST", "/v1/secret/metadata", {}, {}, token).status, 403);
  EXPECT_EQ(call("GET", "/v1/secret/metadata/nic/A", {}, {}, token).status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/metadata/nic/B", {}, {}, token).status, 403);
  EXPECT_EQ(call("GET", "/v1/auth/token/lookup-self", {}, {}, token).status, 200) << "default policy";
  EXPECT_EQ(call("GET", "/v1/nomount/x", {}, {}, token).body, kDenied) << "ACL before routing";
}

TEST_F(FakeVaultAuth, AppRoleLoginAndSecretIdRotation) {
  vault_->set_policy("svc-app", {{"secret/data/nic/*", {"read"}}});
  vault_->add_approle(
      "svc-app", "role-1", "secret-1",
      {.policies = {"svc-app"}, .ttl = std::chrono::seconds(1200), .max_ttl = std::chrono::seconds(3600)});
  auto r = call("POST", "/v1/auth/approle/login", R"({"role_id":"role-1","secret_id":"secret-1"})", {}, "");
  ASSERT_EQ(r.status, 200) << r.body;
  auto v = json(r);
  EXPECT_EQ(at(v, "mount_type").text(), "approle");
  EXPECT_EQ(at(v, "auth.metadata").dump(), R"({"role_name":"svc-app"})");
  EXPECT_EQ(at(v, "auth.policies").dump(), R"(["default","svc-app"])");
  EXPECT_EQ(at(v, "auth.lease_duration").as_int(), 1200);
  EXPECT_EQ(at(v, "auth.orphan").as_bool(), true);
  EXPECT_FALSE(at(v, "auth.entity_id").text().empty());
  const auto token = at(v, "auth.client_token").text();
  vault_->kv_put("secret", "nic/A", {{"username", "u"}});
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, token).status, 200);
  auto look = json(call("GET", "/v1/auth/token/lookup-self", {}, {}, token));
  EXPECT_EQ(at(look, "data.path").text(), "auth/approle/login");
  EXPECT_EQ(at(look, "data.display_name").text(), "approle");
  EXPECT_EQ(at(look, "data.explicit_max_ttl").as_int(), 0);
  // Renewal is capped by the role's token_max_ttl.
  for (int i = 0; i < 2; ++i) {
    clock_.advance(std::chrono::seconds(1000));
    r = call("PUT", "/v1/auth/token/renew-self", R"({"increment":1200})", {}, token);
    EXPECT_EQ(at(json(r), "auth.lease_duration").as_int(), 1200) << r.body;
  }
  clock_.advance(std::chrono::seconds(1000));
  r = call("PUT", "/v1/auth/token/renew-self", R"({"increment":1200})", {}, token);
  EXPECT_EQ(at(json(r), "auth.lease_duration").as_int(), 600) << r.body;
  EXPECT_EQ(at(json(r), "warnings").items().size(), 1u);
  // Writes by this token are attributed to approle.
  vault_->set_policy("svc-app", {{"secret/data/nic/*", {"read", "create", "update"}}});
  call("PUT", "/v1/secret/data/nic/W", R"({"data":{"a":"b"}})", {}, token);
  auto md = json(call("GET", "/v1/secret/metadata/nic/W"));
  EXPECT_EQ(at(md, "data.last_updated_by.actor").text(), "approle");
  EXPECT_EQ(at(md, "data.last_updated_by.entity_id").text(), at(v, "auth.entity_id").text());

  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"secret_id":"x"})", {}, "").body,
            "{\"errors\":[\"missing role_id\"]}\n");
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-1"})", {}, "").body,
            "{\"errors\":[\"missing secret_id\"]}\n");
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"nope","secret_id":"secret-1"})", {}, "").body,
            "{\"errors\":[\"invalid role or secret ID\"]}\n");
  vault_->rotate_secret_id("svc-app", "secret-2");
  r = call("POST", "/v1/auth/approle/login", R"({"role_id":"role-1","secret_id":"secret-1"})", {}, "");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"errors\":[\"invalid role or secret ID\"]}\n");
  EXPECT_EQ(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-1","secret_id":"secret-2"})", {}, "").status,
            200);
}

TEST_F(FakeVaultAuth, RevokingARolesTokensLeavesOthersAndEveryTokenIsListedForScans) {
  vault_->set_policy("svc-app", {{"secret/data/nic/*", {"read"}}});
  vault_->add_approle("svc-app", "role-1", "secret-1", {.policies = {"svc-app"}});
  vault_->add_approle("other", "role-2", "secret-2", {.policies = {"svc-app"}});
  vault_->kv_put("secret", "nic/A", {{"username", "u"}});
  auto login = [&](const char* body) {
    return at(json(call("POST", "/v1/auth/approle/login", body, {}, "")), "auth.client_token").text();
  };
  const auto a1 = login(R"({"role_id":"role-1","secret_id":"secret-1"})");
  const auto a2 = login(R"({"role_id":"role-1","secret_id":"secret-1"})");
  const auto b = login(R"({"role_id":"role-2","secret_id":"secret-2"})");
  const auto created = vault_->create_token({.policies = {"svc-app"}});
  EXPECT_EQ(vault_->revoke_role_tokens("svc-app"), 2u);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, a1).status, 403);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, a2).status, 403);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, b).status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A", {}, {}, created).status, 200);
  EXPECT_EQ(vault_->revoke_role_tokens("svc-app"), 0u);
  // Revoked ones stay listed: a scan for leaked tokens must look for them too.
  EXPECT_EQ(vault_->issued_tokens(), (std::vector<std::string>{a1, a2, b, created}));
}

TEST_F(FakeVaultAuth, ClearFaultsForgetsQueuedFaults) {
  vault_->kv_put("secret", "nic/A", {{"username", "u"}});
  vault_->fail_next(3, 503);
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A").status, 503);
  vault_->clear_faults();
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A").status, 200);
}

}  // namespace
}  // namespace nicsync::fakes::testing
