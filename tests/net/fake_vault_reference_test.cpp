// The test Vault against the reference (/work/shared/reference/vault-api.md, §0–§7 as corrected
// by §12): status, headers and body bytes of request/response pairs taken from it. Request ids,
// token ids and accessors are masked; times come from a manual clock set to the reference's
// example instant, so they are compared as they are.
#include "fake_vault_harness.hpp"

namespace nicsync::fakes::testing {
namespace {

using namespace std::chrono;

class VaultReference : public FakeVaultTest {
 protected:
  void SetUp() override {
    // 2025-03-04T10:11:12.345678901Z, the reference's example time (§1.2).
    clock_.set_system(sys_days{year{2025} / 3 / 4} + 10h + 11min + 12s + 345678901ns);
    start();
  }

  static std::string masked(std::string body) {
    static const std::regex kToken(R"re("(client_token|id)":"hv[sb]\.[A-Za-z0-9]+")re");
    static const std::regex kAccessor(R"("accessor":"[A-Za-z0-9]{24}")");
    static const std::regex kMountAccessor(R"("accessor":"kv_[0-9a-f]{8}")");
    static const std::regex kCluster(R"(vault-cluster-[0-9a-f]{8})");
    static const std::regex kRequestId(R"("request_id":"[0-9a-f-]{36}")");
    static const std::regex kUuid(R"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})");
    body = std::regex_replace(body, kRequestId, R"("request_id":"<id>")");
    body = std::regex_replace(body, kToken, R"("$1":"<token>")");
    body = std::regex_replace(body, kAccessor, R"("accessor":"<accessor>")");
    body = std::regex_replace(body, kMountAccessor, R"("accessor":"kv_<accessor>")");
    body = std::regex_replace(body, kCluster, "vault-cluster-<id>");
    body = std::regex_replace(body, kUuid, "<uuid>");
    return body;
  }

  /// Status, Vault's headers on every answer, and the body bytes (masked).
  void expect(const http::Response& r, int status, const std::string& body) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("Cache-Control"), "no-store");
    EXPECT_EQ(r.header("Content-Type"), "application/json") << "exactly, no charset (§12.8)";
    EXPECT_EQ(masked(r.body), body);
  }

  void put_secret() {
    ASSERT_EQ(call("PUT", "/v1/secret/data/app/db", R"({"data":{"username":"svc-app","password":"hunter2"}})").status,
              200);
  }

  static constexpr std::string_view kTime = "2025-03-04T10:11:12.345678901Z";
};

std::string t(std::string_view s) { return std::string(s); }

// §0.1: anything outside /v1/ is 404 with an empty error list.
TEST_F(VaultReference, P01_UnknownNonApiPath) { expect(call("GET", "/nothing/here"), 404, "{\"errors\":[]}\n"); }

// §0.1: a method Vault does not map to an operation.
TEST_F(VaultReference, P02_UnsupportedMethod) {
  expect(call("COPY", "/v1/secret/data/app/db"), 405, "{\"errors\":[]}\n");
}

// §0.1: a non-bool list parameter.
TEST_F(VaultReference, P03_BadListParameter) {
  expect(call("GET", "/v1/secret/metadata/app?list=sure"), 400, "{\"errors\":[]}\n");
}

// §0.1: a body that is not JSON.
TEST_F(VaultReference, P04_UnparsableBody) {
  expect(call("PUT", "/v1/secret/data/app/db", "{\"data\":"), 400,
         "{\"errors\":[\"failed to parse JSON input: unexpected EOF\"]}\n");
}

// §1.3: write → the new version's metadata, flat.
TEST_F(VaultReference, P05_WriteReturnsVersionMetadata) {
  expect(call("PUT", "/v1/secret/data/app/db", R"({"options":{"cas":0},"data":{"username":"svc-app"}})"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"created_time":")" +
             t(kTime) +
             R"(","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1},"wrap_info":null,)"
             R"("warnings":null,"auth":null,"mount_type":"kv"})"
             "\n");
}

// §1.2: read of the current version.
TEST_F(VaultReference, P06_ReadCurrentVersion) {
  put_secret();
  expect(call("GET", "/v1/secret/data/app/db"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":)"
         R"({"password":"hunter2","username":"svc-app"},"metadata":{"created_time":")" +
             t(kTime) +
             R"(","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}},"wrap_info":null,)"
             R"("warnings":null,"auth":null,"mount_type":"kv"})"
             "\n");
}

// §1.2: an absent key, and a version that never existed.
TEST_F(VaultReference, P07_AbsentKeyAndVersion) {
  expect(call("GET", "/v1/secret/data/app/none"), 404, "{\"errors\":[]}\n");
  put_secret();
  expect(call("GET", "/v1/secret/data/app/db?version=9"), 404, "{\"errors\":[]}\n");
}

// §1.2: a soft-deleted version: 404 with the whole envelope, raw (no newline, mount_type "").
TEST_F(VaultReference, P08_SoftDeletedVersion) {
  put_secret();
  clock_.set_system(sys_days{year{2025} / 3 / 5} + 8h + 1ns);
  ASSERT_EQ(call("DELETE", "/v1/secret/data/app/db").status, 204);
  expect(call("GET", "/v1/secret/data/app/db"), 404,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null,)"
         R"("metadata":{"created_time":")" +
             t(kTime) +
             R"(","custom_metadata":null,"deletion_time":"2025-03-05T08:00:00.000000001Z","destroyed":false,)"
             R"("version":1}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":""})");
}

// §1.2: a destroyed version.
TEST_F(VaultReference, P09_DestroyedVersion) {
  put_secret();
  ASSERT_EQ(call("PUT", "/v1/secret/destroy/app/db", R"({"versions":[1]})").status, 204);
  expect(call("GET", "/v1/secret/data/app/db"), 404,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null,)"
         R"("metadata":{"created_time":")" +
             t(kTime) +
             R"(","custom_metadata":null,"deletion_time":"","destroyed":true,"version":1}},"wrap_info":null,)"
             R"("warnings":null,"auth":null,"mount_type":""})");
}

// §1.3: check-and-set failures and a missing data field.
TEST_F(VaultReference, P10_CheckAndSetErrors) {
  put_secret();
  expect(call("PUT", "/v1/secret/data/app/db", R"({"options":{"cas":0},"data":{"a":"b"}})"), 400,
         "{\"errors\":[\"check-and-set parameter did not match the current version\"]}\n");
  ASSERT_EQ(call("POST", "/v1/secret/config", R"({"cas_required":true})").status, 204);
  expect(call("PUT", "/v1/secret/data/app/db", R"({"data":{"a":"b"}})"), 400,
         "{\"errors\":[\"check-and-set parameter required for this call\"]}\n");
  expect(call("PUT", "/v1/secret/data/app/db", R"({"options":{"cas":[1]},"data":{"a":"b"}})"), 400,
         "{\"errors\":[\"error parsing check-and-set parameter\"]}\n");
  expect(call("PUT", "/v1/secret/data/app/db", R"({"options":{"cas":1}})"), 400,
         "{\"errors\":[\"no data provided\"]}\n");
}

// §0.1/§1.4: PATCH without the merge-patch content type.
TEST_F(VaultReference, P11_PatchContentType) {
  put_secret();
  expect(call("PATCH", "/v1/secret/data/app/db", R"({"data":{"a":"b"}})", {{"Content-Type", "text/plain"}}), 415,
         "{\"errors\":[\"PATCH requires Content-Type of application/merge-patch+json, got \\\"text/plain\\\"\"]}\n");
}

// §1.5 + §12.5: metadata, with attribution structs (actor, operation, ...) inside sorted maps.
TEST_F(VaultReference, P12_MetadataRead) {
  put_secret();
  expect(call("GET", "/v1/secret/metadata/app/db"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,)"
         R"("created_time":")" +
             t(kTime) +
             R"(","current_version":1,"custom_metadata":null,"delete_version_after":"0s",)"
             R"("last_updated_by":{"actor":"token","operation":"create"},"max_versions":0,"oldest_version":0,)"
             R"("updated_time":")" +
             t(kTime) + R"(","versions":{"1":{"created_by":{"actor":"token","operation":"create"},"created_time":")" +
             t(kTime) +
             R"(","deleted_by":null,"deletion_time":"","destroyed":false}}},"wrap_info":null,"warnings":null,)"
             R"("auth":null,"mount_type":"kv"})"
             "\n");
}

// §1.7: LIST (verb and ?list=true), folders with '/', empty → 404.
TEST_F(VaultReference, P13_List) {
  put_secret();
  ASSERT_EQ(call("PUT", "/v1/secret/data/app/db/replica", R"({"data":{"a":"b"}})").status, 200);
  const std::string body =
      R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"keys":["db","db/"]},)"
      R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
      "\n";
  expect(call("LIST", "/v1/secret/metadata/app"), 200, body);
  expect(call("GET", "/v1/secret/metadata/app/?list=true"), 200, body);
  expect(call("LIST", "/v1/secret/metadata/empty"), 404, "{\"errors\":[]}\n");
}

// §1.8 + §12.4: the empty-versions errors, one in lower case.
TEST_F(VaultReference, P14_EmptyVersions) {
  put_secret();
  expect(call("POST", "/v1/secret/delete/app/db", R"({"versions":[]})"), 400,
         "{\"errors\":[\"No version number provided\"]}\n");
  expect(call("POST", "/v1/secret/undelete/app/db", "{}"), 400, "{\"errors\":[\"No version number provided\"]}\n");
  expect(call("POST", "/v1/secret/destroy/app/db", "{}"), 400, "{\"errors\":[\"no version number provided\"]}\n");
}

// §0.2: a no-body success is 204 with Content-Type still application/json.
TEST_F(VaultReference, P15_NoContentKeepsJsonContentType) {
  put_secret();
  auto r = call("POST", "/v1/secret/delete/app/db", R"({"versions":"1"})");
  expect(r, 204, "");
}

// §1.10: mount config.
TEST_F(VaultReference, P16_MountConfig) {
  expect(call("GET", "/v1/secret/config"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,)"
         R"("delete_version_after":"0s","max_versions":0},"wrap_info":null,"warnings":null,"auth":null,)"
         R"("mount_type":"kv"})"
         "\n");
}

// §1.11: wrong paths on a versioned mount.
TEST_F(VaultReference, P17_WrongPaths) {
  expect(call("GET", "/v1/secret/app/db"), 404,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
         R"("warnings":["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API )"
         R"(endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."],"auth":null,)"
         R"("mount_type":""})");
  expect(call("PUT", "/v1/secret/metadata", "{}"), 404,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
         R"("warnings":["Non-listing operations on the root of a K/V v2 mount are not supported."],"auth":null,)"
         R"("mount_type":""})");
}

// §1.12: KV v1 read (lease_duration 2764800), write errors.
TEST_F(VaultReference, P18_KvV1) {
  auto w = call("POST", "/v1/kv/app/db", R"({"foo":"bar"})");
  expect(w, 204, "");
  expect(call("GET", "/v1/kv/app/db"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":2764800,"data":{"foo":"bar"},)"
         R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
         "\n");
  expect(call("POST", "/v1/kv/app/db", ""), 400, "{\"errors\":[\"missing data fields\"]}\n");
  expect(call("GET", "/v1/kv/app/none"), 404, "{\"errors\":[]}\n");
}

// §1.13: mount detection, and the preflight 403 for an unknown mount.
TEST_F(VaultReference, P19_UiMounts) {
  expect(call("GET", "/v1/sys/internal/ui/mounts/secret/app/db"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":)"
         R"("kv_<accessor>","config":{"default_lease_ttl":0,"force_no_cache":false,"max_lease_ttl":0},)"
         R"("description":"key/value secret storage","external_entropy_access":false,"local":false,)"
         R"("options":{"version":"2"},"path":"secret/","plugin_version":"","running_plugin_version":)"
         R"("v0.26.2+builtin","running_sha256":"","seal_wrap":false,"type":"kv","uuid":"<uuid>"},"wrap_info":null,)"
         R"("warnings":null,"auth":null,"mount_type":"system"})"
         "\n");
  expect(call("GET", "/v1/sys/internal/ui/mounts/nomount/app"), 403,
         "{\"errors\":[\"preflight capability check returned 403, please ensure client's policies grant access to "
         "path \\\"nomount/app/\\\"\"]}\n");
}

// §2.2: the three permission-denied bodies.
TEST_F(VaultReference, P20_PermissionDenied) {
  expect(call("GET", "/v1/secret/data/app/db", {}, {}, "hvs.expired"), 403,
         "{\"errors\":[\"2 errors occurred:\\n\\t* permission denied\\n\\t* invalid token\\n\\n\"]}\n");
  vault_->set_policy("none", {{"kv/*", {"read"}}});
  const auto token = vault_->create_token({.policies = {"none"}});
  expect(call("GET", "/v1/secret/data/app/db", {}, {}, token), 403,
         "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}\n");
  expect(call("GET", "/v1/secret/data/app/db", {}, {}, ""), 403, "{\"errors\":[\"permission denied\"]}\n");
}

// §2.1: no mount at the path.
TEST_F(VaultReference, P21_NoHandlerForRoute) {
  expect(call("GET", "/v1/nomount/data/x"), 404,
         "{\"errors\":[\"no handler for route \\\"nomount/data/x\\\". route entry not found.\"]}\n");
}

// §2.3: sealed.
TEST_F(VaultReference, P22_Sealed) {
  vault_->seal();
  expect(call("GET", "/v1/secret/data/app/db"), 503, "{\"errors\":[\"Vault is sealed\"]}\n");
}

// §4.1: lookup-self of the root token (no lease: no renewable, no issue_time, expire_time null).
TEST_F(VaultReference, P23_LookupSelfRoot) {
  expect(call("GET", "/v1/auth/token/lookup-self"), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":)"
         R"("<accessor>","creation_time":1741083072,"creation_ttl":0,"display_name":"root","entity_id":"",)"
         R"("expire_time":null,"explicit_max_ttl":0,"id":"root","meta":null,"num_uses":0,"orphan":true,)"
         R"("path":"auth/token/root","policies":["root"],"ttl":0,"type":"service"},"wrap_info":null,)"
         R"("warnings":null,"auth":null,"mount_type":"token"})"
         "\n");
}

// §4.2 + §12.2: a renewal capped at the remaining max TTL, with the warning's Go durations.
TEST_F(VaultReference, P24_RenewSelfCapped) {
  vault_->set_policy("svc-app", {{"secret/data/app/*", {"read"}}});
  vault_->add_approle("svc-app", "role-id-1", "secret-id-1",
                      {.policies = {"svc-app"}, .ttl = seconds(1200), .max_ttl = seconds(3600)});
  auto login = call("POST", "/v1/auth/approle/login", R"({"role_id":"role-id-1","secret_id":"secret-id-1"})", {}, "");
  const auto token = at(json(login), "auth.client_token").text();
  clock_.advance(seconds(1000));
  call("PUT", "/v1/auth/token/renew-self", R"({"increment":1200})", {}, token);
  clock_.advance(seconds(1000));
  call("PUT", "/v1/auth/token/renew-self", R"({"increment":1200})", {}, token);
  clock_.advance(seconds(670));
  expect(call("PUT", "/v1/auth/token/renew-self", R"({"increment":"1h"})", {}, token), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
         R"("warnings":["TTL of \"1h0m0s\" exceeded the effective max_ttl of \"15m30s\"; TTL value is capped )"
         R"(accordingly"],"auth":{"client_token":"<token>","accessor":"<accessor>","policies":["default",)"
         R"("svc-app"],"token_policies":["default","svc-app"],"metadata":{"role_name":"svc-app"},)"
         R"("lease_duration":930,"renewable":true,"entity_id":"<uuid>","token_type":"service","orphan":true,)"
         R"("mfa_requirement":null,"num_uses":0},"mount_type":"token"})"
         "\n");
}

// §4.2 + §12.3: renew-self errors.
TEST_F(VaultReference, P25_RenewSelfErrors) {
  expect(call("PUT", "/v1/auth/token/renew-self", "{}"), 400, "{\"errors\":[\"invalid lease ID\"]}\n");
  const auto fixed = vault_->create_token({.renewable = false});
  expect(call("PUT", "/v1/auth/token/renew-self", "{}", {}, fixed), 400, "{\"errors\":[\"lease is not renewable\"]}\n");
}

// §4.3: AppRole login and its failures.
TEST_F(VaultReference, P26_AppRoleLogin) {
  vault_->add_approle("svc-app", "role-id-1", "secret-id-1", {.policies = {"svc-app"}, .ttl = seconds(1200)});
  expect(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-id-1","secret_id":"secret-id-1"})", {}, ""), 200,
         R"({"request_id":"<id>","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
         R"("warnings":null,"auth":{"client_token":"<token>","accessor":"<accessor>","policies":["default",)"
         R"("svc-app"],"token_policies":["default","svc-app"],"metadata":{"role_name":"svc-app"},)"
         R"("lease_duration":1200,"renewable":true,"entity_id":"<uuid>","token_type":"service","orphan":true,)"
         R"("mfa_requirement":null,"num_uses":0},"mount_type":"approle"})"
         "\n");
  expect(call("POST", "/v1/auth/approle/login", R"({"secret_id":"x"})", {}, ""), 400,
         "{\"errors\":[\"missing role_id\"]}\n");
  expect(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-id-1"})", {}, ""), 400,
         "{\"errors\":[\"missing secret_id\"]}\n");
  expect(call("POST", "/v1/auth/approle/login", R"({"role_id":"role-id-1","secret_id":"wrong"})", {}, ""), 400,
         "{\"errors\":[\"invalid role or secret ID\"]}\n");
}

// §5: sys/health active, standby, sealed and a bad parameter.
TEST_F(VaultReference, P27_Health) {
  const std::string tail = R"("echo_duration_ms":0,"clock_skew_ms":0,"replication_primary_canary_age_ms":0)";
  expect(call("GET", "/v1/sys/health", {}, {}, ""), 200,
         R"({"initialized":true,"sealed":false,"standby":false,"performance_standby":false,)"
         R"("replication_performance_mode":"disabled","replication_dr_mode":"disabled","server_time_utc":1741083072,)"
         R"("version":"1.19.0","enterprise":false,"cluster_name":"vault-cluster-<id>","cluster_id":"<uuid>",)" +
             tail + "}\n");
  vault_->set_standby(true);
  EXPECT_EQ(call("GET", "/v1/sys/health", {}, {}, "").status, 429);
  expect(call("GET", "/v1/sys/health?standbyok=maybe", {}, {}, ""), 400, "{\"errors\":[]}\n");
  vault_->set_standby(false);
  vault_->seal();
  expect(call("GET", "/v1/sys/health", {}, {}, ""), 503,
         R"({"initialized":true,"sealed":true,"standby":true,"performance_standby":false,)"
         R"("replication_performance_mode":"disabled","replication_dr_mode":"disabled","server_time_utc":1741083072,)"
         R"("version":"1.19.0","enterprise":false,)" +
             tail + "}\n");
}

// §7: a rate-limit quota rejection, without and with Retry-After.
TEST_F(VaultReference, P28_RateLimited) {
  vault_->fail_next(1, 429);
  auto r = call("GET", "/v1/secret/data/app/db");
  expect(r, 429, "{\"errors\":[\"request path \\\"secret/data/app/db\\\": rate limit quota exceeded\"]}\n");
  EXPECT_FALSE(r.header("Retry-After"));
  vault_->fail_next(1, 429, 5);
  EXPECT_EQ(call("GET", "/v1/secret/data/app/db").header("Retry-After"), "5");
}

// §2.1: 412 of an Enterprise node without the requested index state.
TEST_F(VaultReference, P29_PreconditionFailed) {
  vault_->fail_next(1, 412);
  expect(call("GET", "/v1/secret/data/app/db"), 412, "{\"errors\":[\"required index state not present\"]}\n");
}

// §12.6: `&<>` are HTML-escaped in every body, secret values included.
TEST_F(VaultReference, P30_HtmlEscaping) {
  ASSERT_EQ(call("PUT", "/v1/secret/data/app/db", R"({"data":{"password":"a&b<c>d\"e"}})").status, 200);
  auto r = call("GET", "/v1/secret/data/app/db");
  EXPECT_NE(r.body.find(R"("data":{"password":"a\u0026b\u003cc\u003ed\"e"})"), std::string::npos) << r.body;
}

// §0.2: X-Vault-Namespace is echoed (community Vault ignores it otherwise).
TEST_F(VaultReference, P31_NamespaceEcho) {
  put_secret();
  auto r = call("GET", "/v1/secret/data/app/db", {}, {{"X-Vault-Namespace", "team-a/"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Vault-Namespace"), "team-a/");
}

// §2.4: a standby that cannot forward redirects with no body.
TEST_F(VaultReference, P32_StandbyRedirect) {
  vault_->set_redirect("https://vault-active:8200");
  auto r = call("GET", "/v1/secret/data/app/db?version=2");
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.header("Location"), "https://vault-active:8200/v1/secret/data/app/db?version=2");
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  EXPECT_TRUE(r.body.empty());
}

// §12.7: Go's ServeMux cleans paths with a 301 before Vault sees them.
TEST_F(VaultReference, P33_UncleanPathRedirect) {
  auto r = call("GET", "/v1/secret//data/app/db");
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("Location"), "/v1/secret/data/app/db");
}

}  // namespace
}  // namespace nicsync::fakes::testing
