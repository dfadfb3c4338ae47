// The test Vault's KV engines over real loopback HTTP: KV v2 versions, CAS, eviction, deletes,
// lists, patch, metadata and subkeys; KV v1; wrong paths; mount detection.
#include "fake_vault_harness.hpp"

namespace nicsync::fakes::testing {
namespace {

const std::vector<http::Header> kMergePatch = {{"Content-Type", "application/merge-patch+json"}};

class FakeVaultKv : public FakeVaultTest {
 protected:
  void SetUp() override { start(); }

  std::int64_t write(const std::string& key, const std::string& data_json) {
    auto r = call("PUT", "/v1/secret/data/" + key, R"({"data":)" + data_json + "}");
    EXPECT_EQ(r.status, 200) << r.body;
    return at(json(r), "data.version").as_int().value_or(-1);
  }
};

TEST_F(FakeVaultKv, WriteThenReadReturnsDataAndVersionMetadata) {
  EXPECT_EQ(write("nic/A", R"({"username":"svc","password":"p&<>\"\\é"})"), 1);
  EXPECT_EQ(write("nic/A", R"({"username":"svc","password":"second"})"), 2);
  auto r = call("GET", "/v1/secret/data/nic/A");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("Cache-Control"), "no-store");
  ASSERT_TRUE(r.body.ends_with("}\n"));
  auto v = json(r);
  EXPECT_EQ(at(v, "data.data.password").text(), "second");
  EXPECT_EQ(at(v, "data.metadata.version").as_int(), 2);
  EXPECT_EQ(at(v, "mount_type").text(), "kv");
  auto first = call("GET", "/v1/secret/data/nic/A?version=1");
  ASSERT_EQ(first.status, 200);
  EXPECT_NE(first.body.find(R"("password":"p\u0026\u003c\u003e\"\\é")"), std::string::npos) << first.body;
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/A?version=7").body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/B").body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/B").status, 404);
  auto bad = call("GET", "/v1/secret/data/nic/A?version=abc");
  EXPECT_EQ(bad.status, 400);
}

TEST_F(FakeVaultKv, NumbersAndNestedValuesRoundTripAsWritten) {
  write("cfg", R"({"n":1.50,"big":12345678901234567890,"nested":{"b":2,"a":[true,null]}})");
  auto r = call("GET", "/v1/secret/data/cfg");
  EXPECT_NE(r.body.find(R"("data":{"big":12345678901234567890,"n":1.50,"nested":{"a":[true,null],"b":2}})"),
            std::string::npos)
      << r.body;
}

TEST_F(FakeVaultKv, CheckAndSet) {
  auto r = call("PUT", "/v1/secret/data/k", R"({"options":{"cas":1},"data":{"a":"1"}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"errors\":[\"check-and-set parameter did not match the current version\"]}\n");
  r = call("PUT", "/v1/secret/data/k", R"({"options":{"cas":0},"data":{"a":"1"}})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = call("PUT", "/v1/secret/data/k", R"({"options":{"cas":"1"},"data":{"a":"2"}})");  // numeric string
  EXPECT_EQ(r.status, 200) << r.body;
  r = call("PUT", "/v1/secret/data/k", R"({"options":{"cas":"two"},"data":{"a":"3"}})");
  EXPECT_EQ(r.body, "{\"errors\":[\"error parsing check-and-set parameter\"]}\n");
  r = call("PUT", "/v1/secret/data/k", R"({"options":{"cas":1},"data":{"a":"3"}})");
  EXPECT_EQ(r.status, 400);

  // cas_required on the key, then on the mount.
  EXPECT_EQ(call("POST", "/v1/secret/metadata/k", R"({"cas_required":true})").status, 204);
  r = call("PUT", "/v1/secret/data/k", R"({"data":{"a":"3"}})");
  EXPECT_EQ(r.body, "{\"errors\":[\"check-and-set parameter required for this call\"]}\n");
  EXPECT_EQ(call("PUT", "/v1/secret/data/k", R"({"options":{"cas":2},"data":{"a":"3"}})").status, 200);
  EXPECT_EQ(call("POST", "/v1/secret/config", R"({"cas_required":true})").status, 204);
  r = call("PUT", "/v1/secret/data/other", R"({"data":{"a":"1"}})");
  EXPECT_EQ(r.body, "{\"errors\":[\"check-and-set parameter required for this call\"]}\n");
  // Turning it off on a key while the mount mandates it gives a warning (200 instead of 204).
  r = call("POST", "/v1/secret/metadata/k", R"({"cas_required":false})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(at(json(r), "warnings").dump(),
            R"(["\"cas_required\" set to false, but is mandated by backend config. This value will be ignored."])");
  EXPECT_EQ(call("PUT", "/v1/secret/data/x", "{}").body, "{\"errors\":[\"no data provided\"]}\n");
}

TEST_F(FakeVaultKv, EvictionAndOldestVersion) {
  // Default limit 10: the 10th write sets oldest_version to 1 without evicting anything (§12.1).
  for (int i = 1; i <= 9; ++i) write("k", R"({"v":")" + std::to_string(i) + "\"}");
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/k")), "data.oldest_version").as_int(), 0);
  write("k", R"({"v":"10"})");
  auto md = json(call("GET", "/v1/secret/metadata/k"));
  EXPECT_EQ(at(md, "data.oldest_version").as_int(), 1);
  EXPECT_EQ(at(md, "data.versions").members().size(), 10u);
  write("k", R"({"v":"11"})");
  md = json(call("GET", "/v1/secret/metadata/k"));
  EXPECT_EQ(at(md, "data.oldest_version").as_int(), 2);
  EXPECT_EQ(at(md, "data.versions").members().size(), 10u);
  EXPECT_FALSE(at(md, "data.versions").find("1"));
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=1").status, 404);

  // A key limit of 3: the larger of key and mount limits wins.
  EXPECT_EQ(call("POST", "/v1/secret/metadata/small", R"({"max_versions":3})").status, 204);
  for (int i = 1; i <= 5; ++i) write("small", R"({"v":")" + std::to_string(i) + "\"}");
  md = json(call("GET", "/v1/secret/metadata/small"));
  EXPECT_EQ(at(md, "data.oldest_version").as_int(), 3);
  EXPECT_EQ(at(md, "data.current_version").as_int(), 5);
  EXPECT_EQ(at(md, "data.max_versions").as_int(), 3);
  EXPECT_EQ(at(md, "data.versions").dump().find("\"1\""), std::string::npos);
  EXPECT_EQ(call("POST", "/v1/secret/config", R"({"max_versions":4})").status, 204);
  write("small", R"({"v":"6"})");
  md = json(call("GET", "/v1/secret/metadata/small"));
  EXPECT_EQ(at(md, "data.oldest_version").as_int(), 3);  // limit 4 now: 3..6 kept
  EXPECT_EQ(at(md, "data.versions").members().size(), 4u);
}

TEST_F(FakeVaultKv, SoftDeleteUndeleteDestroyAndWhatReadsReturn) {
  write("k", R"({"a":"1"})");
  write("k", R"({"a":"2"})");
  EXPECT_EQ(call("DELETE", "/v1/secret/data/k").status, 204);
  auto r = call("GET", "/v1/secret/data/k");
  EXPECT_EQ(r.status, 404);
  EXPECT_FALSE(r.body.ends_with("\n")) << "raw responses have no trailing newline";
  EXPECT_EQ(mask(r.body),
            R"({"request_id":"<uuid>","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":null,)"
            R"("metadata":{"created_time":"<time>","custom_metadata":null,"deletion_time":"<time>","destroyed":false,)"
            R"("version":2}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":""})");
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=1").status, 200);
  // Current version unchanged by a delete; deleted_by and last_updated_by record it.
  auto md = json(call("GET", "/v1/secret/metadata/k"));
  EXPECT_EQ(at(md, "data.current_version").as_int(), 2);
  EXPECT_EQ(at(md, "data.versions.2.deleted_by").dump(), R"({"actor":"token","operation":"delete"})");
  EXPECT_EQ(at(md, "data.last_updated_by").dump(), R"({"actor":"token","operation":"delete"})");

  EXPECT_EQ(call("POST", "/v1/secret/undelete/k", R"({"versions":[2]})").status, 204);
  EXPECT_EQ(call("GET", "/v1/secret/data/k").status, 200);
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/k")), "data.last_updated_by.operation").text(), "undelete");

  EXPECT_EQ(call("POST", "/v1/secret/delete/k", R"({"versions":["1","2"]})").status, 204);
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=1").status, 404);
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/k")), "data.last_updated_by.operation").text(), "update");
  EXPECT_EQ(call("POST", "/v1/secret/destroy/k", R"({"versions":"2"})").status, 204);
  r = call("GET", "/v1/secret/data/k");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("destroyed":true,"version":2)"), std::string::npos) << r.body;
  // Undelete cannot bring back destroyed data.
  EXPECT_EQ(call("POST", "/v1/secret/undelete/k", R"({"versions":[1,2]})").status, 204);
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=1").status, 200);
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=2").status, 404);

  EXPECT_EQ(call("POST", "/v1/secret/delete/k", "{}").body, "{\"errors\":[\"No version number provided\"]}\n");
  EXPECT_EQ(call("POST", "/v1/secret/undelete/k", R"({"versions":[]})").body,
            "{\"errors\":[\"No version number provided\"]}\n");
  EXPECT_EQ(call("POST", "/v1/secret/destroy/k", "{}").body, "{\"errors\":[\"no version number provided\"]}\n");
  // Deleting an absent key is a no-op.
  EXPECT_EQ(call("DELETE", "/v1/secret/data/absent").status, 204);
  EXPECT_EQ(call("DELETE", "/v1/secret/metadata/absent").status, 204);
  // Deleting metadata removes every version.
  EXPECT_EQ(call("DELETE", "/v1/secret/metadata/k").status, 204);
  EXPECT_EQ(call("GET", "/v1/secret/metadata/k").body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("GET", "/v1/secret/data/k?version=1").body, "{\"errors\":[]}\n");
}

TEST_F(FakeVaultKv, DeleteVersionAfterSetsAFutureDeletionTime) {
  EXPECT_EQ(call("POST", "/v1/secret/metadata/t", R"({"delete_version_after":"1h"})").status, 204);
  write("t", R"({"a":"1"})");
  auto r = call("GET", "/v1/secret/data/t");
  ASSERT_EQ(r.status, 200) << "a pending deletion still reads";
  const auto deletion = at(json(r), "data.metadata.deletion_time").text();
  EXPECT_FALSE(deletion.empty());
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/t")), "data.delete_version_after").text(), "1h0m0s");
  clock_.advance(std::chrono::hours(1) + std::chrono::seconds(1));
  r = call("GET", "/v1/secret/data/t");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(at(json(r), "data.metadata.deletion_time").text(), deletion);
}

TEST_F(FakeVaultKv, ListWithVerbAndQueryParameter) {
  write("nic/A", R"({"a":"1"})");
  write("nic/B", R"({"a":"1"})");
  write("nic/sub/C", R"({"a":"1"})");
  write("nic", R"({"a":"1"})");
  write("other", R"({"a":"1"})");
  auto root = call("LIST", "/v1/secret/metadata");
  ASSERT_EQ(root.status, 200);
  EXPECT_EQ(at(json(root), "data.keys").dump(), R"(["nic","nic/","other"])");
  auto dir = call("GET", "/v1/secret/metadata/nic?list=true");
  ASSERT_EQ(dir.status, 200);
  EXPECT_EQ(at(json(dir), "data.keys").dump(), R"(["A","B","sub/"])");
  EXPECT_EQ(at(json(call("LIST", "/v1/secret/metadata/nic/")), "data.keys").dump(), R"(["A","B","sub/"])");
  EXPECT_EQ(call("LIST", "/v1/secret/metadata/none").body, "{\"errors\":[]}\n");
  EXPECT_EQ(call("LIST", "/v1/secret/metadata/none").status, 404);
  auto bad = call("GET", "/v1/secret/metadata/nic?list=maybe");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "{\"errors\":[]}\n");
  // list=false is a plain read.
  EXPECT_EQ(call("GET", "/v1/secret/metadata/nic?list=false").status, 200);
  // Deleted keys are still listed.
  call("DELETE", "/v1/secret/data/other");
  EXPECT_EQ(at(json(call("LIST", "/v1/secret/metadata")), "data.keys").dump(), R"(["nic","nic/","other"])");
}

TEST_F(FakeVaultKv, PatchNeedsMergePatchContentType) {
  write("p", R"({"a":"1","b":{"c":"2","d":"3"}})");
  auto r = call("PATCH", "/v1/secret/data/p", R"({"data":{"a":"9"}})", {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(r.body,
            "{\"errors\":[\"PATCH requires Content-Type of application/merge-patch+json, got "
            "\\\"application/json\\\"\"]}\n");
  r = call("PATCH", "/v1/secret/data/p", R"({"data":{"a":null,"b":{"c":"new"},"e":"5"}})", kMergePatch);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(at(json(r), "data.version").as_int(), 2);
  EXPECT_EQ(at(json(call("GET", "/v1/secret/data/p")), "data.data").dump(), R"({"b":{"c":"new","d":"3"},"e":"5"})");
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/p")), "data.versions.2.created_by.operation").text(), "patch");
  r = call("PATCH", "/v1/secret/data/absent", R"({"data":{"a":"1"}})", kMergePatch);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"errors\":[]}\n");
  call("DELETE", "/v1/secret/data/p");
  r = call("PATCH", "/v1/secret/data/p", R"({"data":{"a":"1"}})", kMergePatch);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(mask(r.body),
            R"({"request_id":"<uuid>","lease_id":"","renewable":false,"lease_duration":0,"data":{"created_time":)"
            R"("<time>","custom_metadata":null,"deletion_time":"<time>","destroyed":false,"version":2},)"
            R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":""})");
}

TEST_F(FakeVaultKv, MetadataWritePatchAndCustomMetadata) {
  EXPECT_EQ(call("POST", "/v1/secret/metadata/m", R"({"custom_metadata":{"owner":"team-a","tier":"1"}})").status, 204);
  auto md = json(call("GET", "/v1/secret/metadata/m"));
  EXPECT_EQ(at(md, "data.current_version").as_int(), 0);
  EXPECT_EQ(at(md, "data.custom_metadata").dump(), R"({"owner":"team-a","tier":"1"})");
  EXPECT_EQ(at(md, "data.versions").dump(), "{}");
  EXPECT_EQ(call("GET", "/v1/secret/data/m").status, 404) << "metadata without versions reads as absent";
  write("m", R"({"a":"1"})");
  EXPECT_EQ(at(json(call("GET", "/v1/secret/data/m")), "data.metadata.custom_metadata").dump(),
            R"({"owner":"team-a","tier":"1"})");
  auto r = call("PATCH", "/v1/secret/metadata/m", R"({"custom_metadata":{"tier":null,"x":"y"}})", kMergePatch);
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/m")), "data.custom_metadata").dump(),
            R"({"owner":"team-a","x":"y"})");
  EXPECT_EQ(call("PATCH", "/v1/secret/metadata/none", R"({"max_versions":1})", kMergePatch).status, 404);
  r = call("POST", "/v1/secret/metadata/m", R"({"custom_metadata":{"k":")" + std::string(513, 'v') + "\"}}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"errors\":[\"custom_metadata validation failed: 1 error occurred:\\n\\t* length of value for key "
            "\\\"k\\\" is 513 but max is 512\\n\\n\"]}\n");
  // The first data write found metadata already there: an update. Destroy and metadata
  // writes leave last_updated_by alone.
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/m")), "data.last_updated_by.operation").text(), "update");
  call("POST", "/v1/secret/destroy/m", R"({"versions":[1]})");
  call("POST", "/v1/secret/metadata/m", R"({"max_versions":5})");
  EXPECT_EQ(at(json(call("GET", "/v1/secret/metadata/m")), "data.last_updated_by.operation").text(), "update");
}

TEST_F(FakeVaultKv, SubkeysAndMountConfig) {
  write("s", R"({"password":"x","tls":{"cert":"c","key":"k","deep":{"a":"b"}},"empty":{}})");
  auto r = call("GET", "/v1/secret/subkeys/s");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(at(json(r), "data.subkeys").dump(),
            R"({"empty":null,"password":null,"tls":{"cert":null,"deep":{"a":null},"key":null}})");
  EXPECT_EQ(at(json(call("GET", "/v1/secret/subkeys/s?depth=1")), "data.subkeys").dump(),
            R"({"empty":null,"password":null,"tls":null})");
  call("DELETE", "/v1/secret/data/s");
  r = call("GET", "/v1/secret/subkeys/s");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find(R"("subkeys":null)"), std::string::npos);
  EXPECT_EQ(at(json(call("GET", "/v1/secret/config")), "data").dump(),
            R"({"cas_required":false,"delete_version_after":"0s","max_versions":0})");
}

TEST_F(FakeVaultKv, KvV1) {
  EXPECT_EQ(call("PUT", "/v1/kv/app/db", R"({"username":"u","password":"p"})").status, 204);
  auto r = call("GET", "/v1/kv/app/db");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(mask(r.body),
            R"({"request_id":"<uuid>","lease_id":"","renewable":false,"lease_duration":2764800,)"
            R"("data":{"password":"p","username":"u"},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
            "\n");
  call("POST", "/v1/kv/app/ttl", R"({"ttl":"1h","v":"x"})");
  EXPECT_EQ(at(json(call("GET", "/v1/kv/app/ttl")), "lease_duration").as_int(), 3600);
  EXPECT_EQ(call("POST", "/v1/kv/app/empty", "{}").body, "{\"errors\":[\"missing data fields\"]}\n");
  auto list = call("LIST", "/v1/kv/app");
  EXPECT_EQ(at(json(list), "data.keys").dump(), R"(["db","ttl"])");
  EXPECT_EQ(at(json(list), "lease_duration").as_int(), 0);
  EXPECT_EQ(call("DELETE", "/v1/kv/app/db").status, 204);
  EXPECT_EQ(call("GET", "/v1/kv/app/db").body, "{\"errors\":[]}\n");
}

TEST_F(FakeVaultKv, WrongPathsOnAVersionedMount) {
  const std::string warning_prefix =
      "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. "
      "If using the Vault CLI, use 'vault kv ";
  auto r = call("GET", "/v1/secret/foo");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(at(json(r), "warnings").items().at(0).text(), warning_prefix + "get' for this operation.");
  EXPECT_EQ(at(json(r), "data"), GoValue());
  EXPECT_FALSE(r.body.ends_with("\n"));
  EXPECT_EQ(at(json(call("PUT", "/v1/secret/foo", R"({"a":"b"})")), "warnings").items().at(0).text(),
            warning_prefix + "put' for this operation.");
  EXPECT_EQ(at(json(call("LIST", "/v1/secret/foo")), "warnings").items().at(0).text(),
            warning_prefix + "list' for this operation.");
  EXPECT_EQ(at(json(call("DELETE", "/v1/secret/foo")), "warnings").items().at(0).text(),
            warning_prefix + "delete' for this operation.");
  r = call("GET", "/v1/secret/data/");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(at(json(r), "warnings").dump(),
            R"(["Non-listing operations on the root of a K/V v2 mount are not supported."])");
  r = call("GET", "/v1/nomount/data/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"errors\":[\"no handler for route \\\"nomount/data/x\\\". route entry not found.\"]}\n");
}

TEST_F(FakeVaultKv, MountDetection) {
  auto r = call("GET", "/v1/sys/internal/ui/mounts/secret/nic/A");
  ASSERT_EQ(r.status, 200);
  auto v = json(r);
  EXPECT_EQ(at(v, "data.options.version").text(), "2");
  EXPECT_EQ(at(v, "data.path").text(), "secret/");
  EXPECT_EQ(at(v, "data.type").text(), "kv");
  EXPECT_EQ(at(json(call("GET", "/v1/sys/internal/ui/mounts/kv/x")), "data.options.version").text(), "1");
  r = call("GET", "/v1/sys/internal/ui/mounts/nomount/x");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body,
            "{\"errors\":[\"preflight capability check returned 403, please ensure client's policies grant access "
            "to path \\\"nomount/x/\\\"\"]}\n");
  // Any capability somewhere under the mount is enough; none gives the same 403.
  vault_->set_policy("nic-read", {{"secret/data/nic/*", {"read"}}});
  vault_->set_policy("other", {{"kv/*", {"read"}}});
  const auto reader = vault_->create_token({.policies = {"nic-read"}});
  const auto outsider = vault_->create_token({.policies = {"other"}});
  EXPECT_EQ(call("GET", "/v1/sys/internal/ui/mounts/secret/nic/A", {}, {}, reader).status, 200);
  r = call("GET", "/v1/sys/internal/ui/mounts/secret/nic/A", {}, {}, outsider);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("preflight capability check returned 403"), std::string::npos);
  // A new mount through the API.
  EXPECT_EQ(call("POST", "/v1/sys/mounts/kv2", R"({"type":"kv","options":{"version":"2"}})").status, 204);
  EXPECT_EQ(at(json(call("GET", "/v1/sys/internal/ui/mounts/kv2/x")), "data.options.version").text(), "2");
  EXPECT_EQ(call("PUT", "/v1/kv2/data/x", R"({"data":{"a":"b"}})").status, 200);
}

TEST_F(FakeVaultKv, DataPlaneCallsAreVisibleOverHttp) {
  EXPECT_EQ(vault_->kv_put("secret", "nic/X", {{"username", "u"}, {"password", "p"}}), 1);
  EXPECT_EQ(vault_->kv_put("secret", "nic/X", {{"username", "u"}, {"password", "q"}}), 2);
  EXPECT_EQ(vault_->kv_current_version("secret", "nic/X"), 2);
  EXPECT_EQ(at(json(call("GET", "/v1/secret/data/nic/X")), "data.data.password").text(), "q");
  vault_->kv_delete_latest("secret", "nic/X");
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/X").status, 404);
  vault_->kv_undelete("secret", "nic/X", {2});
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/X").status, 200);
  vault_->kv_destroy("secret", "nic/X", {2});
  EXPECT_NE(call("GET", "/v1/secret/data/nic/X").body.find(R"("destroyed":true)"), std::string::npos);
  vault_->kv_delete_versions("secret", "nic/X", {1});
  EXPECT_EQ(call("GET", "/v1/secret/data/nic/X?version=1").status, 404);
  vault_->kv_delete_metadata("secret", "nic/X");
  EXPECT_EQ(call("GET", "/v1/secret/metadata/nic/X").status, 404);
  vault_->kv_put("kv", "flat", {{"a", "b"}});
  EXPECT_EQ(at(json(call("GET", "/v1/kv/flat")), "data.a").text(), "b");
}

}  // namespace
}  // namespace nicsync::fakes::testing
