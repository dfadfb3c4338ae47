// Vault wire format: URLs and headers the client builds, and how it reads the reference's
// response bodies (vault-api.md §0–§4, §12), including truncated, non-JSON and wrong-shape ones.
#include <gtest/gtest.h>

#include "nicsync/core/timestamp.hpp"
#include "vault/wire.hpp"

namespace nicsync::vault::wire {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kPassword = "p&<>\"\\ü€-\x01";  // what the JSON below decodes to

KvPath path_of(std::string_view mount, std::string_view key) {
  return KvPath{VaultPath::parse(mount).value(), VaultPath::parse(key).value()};
}

// --- URLs and headers ---------------------------------------------------------------------

TEST(VaultWire, EncodePathKeepsSlashesAndEscapesTheRest) {
  EXPECT_EQ(encode_path("secret/data/nic/07AAFCD5862R1ZX"), "secret/data/nic/07AAFCD5862R1ZX");
  EXPECT_EQ(encode_path("a b/c?d#e%f"), "a%20b/c%3Fd%23e%25f");
  EXPECT_EQ(encode_path("ü"), "%C3%BC");
  EXPECT_EQ(encode_path("x+y&z=1;a,b$"), "x+y&z=1;a,b$");  // as Go's EscapedPath
  EXPECT_EQ(encode_path("-._~:@"), "-._~:@");
  EXPECT_EQ(encode_path("kv-v2/*!'()"), "kv-v2/%2A%21%27%28%29");
}

TEST(VaultWire, MakeUrl) {
  EXPECT_EQ(make_url("https://v:8200", "secret/data/a b", "version=3"),
            "https://v:8200/v1/secret/data/a%20b?version=3");
  EXPECT_EQ(make_url("http://127.0.0.1:8200", "sys/health"), "http://127.0.0.1:8200/v1/sys/health");
}

TEST(VaultWire, HeadersCarryTokenNamespaceAndRequestGuard) {
  Token t(Secret("hvs.abc"));
  auto ns = Namespace::parse("/team-a/app/").value();
  auto h = make_headers(&t, ns, true);
  EXPECT_EQ(http::find_header(h, "X-Vault-Request").value_or(""), "true");
  EXPECT_EQ(http::find_header(h, "X-Vault-Token").value_or(""), "hvs.abc");
  EXPECT_EQ(http::find_header(h, "X-Vault-Namespace").value_or(""), "team-a/app");
  EXPECT_EQ(http::find_header(h, "Content-Type").value_or(""), "application/json");

  auto bare = make_headers(nullptr, Namespace(), false);
  ASSERT_EQ(bare.size(), 1u);
  EXPECT_EQ(bare[0].name, "X-Vault-Request");
}

TEST(VaultWire, ParseAddress) {
  auto a = parse_address("https://vault.example.com", "").value();
  EXPECT_TRUE(a.tls);
  EXPECT_EQ(a.url_base, "https://vault.example.com:443");
  EXPECT_TRUE(a.connect_to.empty());

  auto b = parse_address("http://127.0.0.1:8200/", "").value();
  EXPECT_FALSE(b.tls);
  EXPECT_EQ(b.url_base, "http://127.0.0.1:8200");

  auto c = parse_address("https://[::1]:8200", "").value();
  EXPECT_EQ(c.url_base, "https://[::1]:8200");

  // VAULT_TLS_SERVER_NAME: the name goes in the URL (SNI, verification), traffic to the address.
  auto d = parse_address("https://10.0.0.5:8200", "vault.internal").value();
  EXPECT_EQ(d.url_base, "https://vault.internal:8200");
  EXPECT_EQ(d.connect_to, "vault.internal:8200:10.0.0.5:8200");
  EXPECT_EQ(d.display, "https://10.0.0.5:8200");

  for (const char* bad : {"unix:///run/vault.sock", "ftp://x", "vault:8200", "https://u:p@v:8200", "https://v/x",
                          "https://v:8200?q=1", ""}) {
    auto r = parse_address(bad, "");
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().is(Errc::config_invalid)) << bad;
  }
  EXPECT_FALSE(parse_address("https://v:8200", "bad name"));
}

TEST(VaultWire, RetryableStatusesFollowTheGoClient) {
  for (int s : {412, 429, 500, 502, 503, 504, 599}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {200, 204, 301, 307, 400, 401, 403, 404, 405, 501}) EXPECT_FALSE(is_retryable_status(s)) << s;
  EXPECT_TRUE(is_retryable_error(Error(Errc::http_connection_refused)));
  EXPECT_TRUE(is_retryable_error(Error(Errc::http_network)));
  EXPECT_FALSE(is_retryable_error(Error(Errc::http_tls_verify)));
  EXPECT_FALSE(is_retryable_error(Error(Errc::http_bad_url)));
  EXPECT_FALSE(is_retryable_error(Error(Errc::cancelled)));
}

// --- KV v2 data -----------------------------------------------------------------------------

// §1.2 200 body, one line as on the wire, with a password that Go's encoder HTML-escapes (§12.6).
constexpr std::string_view kKv2Read =
    R"({"request_id":"b6f1d8a2-3c4e-5f60-7182-93a4b5c6d7e8","lease_id":"","renewable":false,"lease_duration":0,)"
    R"("data":{"data":{"password":"p\u0026\u003c\u003e\"\\\u00fc€-\u0001","username":"svc-app"},)"
    R"("metadata":{"created_time":"2025-03-04T10:11:12.345678901Z","custom_metadata":{"owner":"team-a"},)"
    R"("deletion_time":"","destroyed":false,"version":3}},"wrap_info":null,"warnings":null,"auth":null,)"
    R"("mount_type":"kv"})"
    "\n";

TEST(VaultWire, Kv2ReadDecodesEscapesIntoSecrets) {
  auto s = parse_kv2_data(path_of("secret", "nic/07AAFCD5862R1ZX"), 200, kKv2Read);
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->version, 3);
  EXPECT_EQ(s->kv, KvVersion::v2);
  EXPECT_EQ(s->metadata.created_time, "2025-03-04T10:11:12.345678901Z");
  EXPECT_FALSE(s->metadata.destroyed);
  EXPECT_EQ(s->custom_metadata.at("owner"), "team-a");
  auto password = s->data.field("password");
  ASSERT_TRUE(password);
  EXPECT_EQ((*password)->expose(), kPassword);
  EXPECT_EQ(s->data.field("username").value()->expose(), "svc-app");
  EXPECT_EQ(fmt::format("{}", *s->data.field("password").value()), "***");
}

TEST(VaultWire, Kv2FieldErrorsNameTheFieldNotTheValue) {
  constexpr std::string_view body =
      R"({"data":{"data":{"username":"svc","password":12345,"note":{"a":1}},"metadata":{"created_time":"",)"
      R"("custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}}})";
  auto s = parse_kv2_data(path_of("secret", "nic/X"), 200, body);
  ASSERT_TRUE(s) << s.error().describe();
  auto pw = s->data.field("password");
  ASSERT_FALSE(pw);
  EXPECT_TRUE(pw.error().is(Errc::vault_secret_malformed));
  EXPECT_NE(pw.error().message.find("\"password\""), std::string::npos);
  EXPECT_NE(pw.error().message.find("number"), std::string::npos);
  EXPECT_NE(pw.error().message.find("secret/nic/X"), std::string::npos);
  EXPECT_EQ(pw.error().message.find("12345"), std::string::npos);

  auto missing = s->data.field("api_key");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().is(Errc::vault_secret_malformed));
  EXPECT_NE(missing.error().message.find("no field \"api_key\""), std::string::npos);
  EXPECT_NE(missing.error().message.find("username"), std::string::npos);  // lists what exists
  EXPECT_EQ(missing.error().message.find("svc\""), std::string::npos);
  EXPECT_EQ(s->data.non_string_fields().at("note"), "object");
}

// §1.2: soft-deleted version, exact raw bytes (no trailing newline).
constexpr std::string_view kKv2Deleted =
    R"({"request_id":"0c1d2e3f-4a5b-6c7d-8e9f-a0b1c2d3e4f5","lease_id":"","renewable":false,"lease_duration":0,)"
    R"("data":{"data":null,"metadata":{"created_time":"2025-03-04T10:11:12.345678901Z","custom_metadata":null,)"
    R"("deletion_time":"2025-03-05T08:00:00.000000001Z","destroyed":false,"version":3}},"wrap_info":null,)"
    R"("warnings":null,"auth":null,"mount_type":""})";

TEST(VaultWire, Kv2DeletedVersionIsReportedAsDeleted) {
  auto s = parse_kv2_data(path_of("secret", "nic/X"), 404, kKv2Deleted);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_version_deleted)) << s.error().describe();
  EXPECT_NE(s.error().message.find("version 3"), std::string::npos);
  EXPECT_NE(s.error().message.find("undelete"), std::string::npos);
  EXPECT_EQ(s.error().http_status, 404);
}

TEST(VaultWire, Kv2DestroyedVersionIsReportedAsDestroyed) {
  std::string body(kKv2Deleted);
  body.replace(body.find("\"2025-03-05T08:00:00.000000001Z\""), 32, "\"\"");
  body.replace(body.find("\"destroyed\":false"), 17, "\"destroyed\":true");
  auto s = parse_kv2_data(path_of("secret", "nic/X"), 404, body);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_version_destroyed)) << s.error().describe();
  EXPECT_EQ(classify(s.error().code), ErrorClass::permanent);
}

TEST(VaultWire, Kv2MissingKeyIsNotFoundAndNotRetried) {
  auto s = parse_kv2_data(path_of("secret", "nic/X"), 404, "{\"errors\":[]}\n");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_not_found));
  EXPECT_NE(s.error().message.find("secret/nic/X"), std::string::npos);
  EXPECT_EQ(classify(s.error().code), ErrorClass::permanent);
}

TEST(VaultWire, Kv2WrongPathWarningIsNotFound) {
  // §1.11: a raw envelope with data null and a warning.
  constexpr std::string_view body =
      R"({"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
      R"("warnings":["Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API )"
      R"(endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."],"auth":null,)"
      R"("mount_type":"kv"})";
  auto s = parse_kv2_data(path_of("secret", "x"), 404, body);
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().is(Errc::vault_not_found));
  EXPECT_NE(s.error().message.find("Invalid path for a versioned K/V"), std::string::npos);
}

TEST(VaultWire, TruncatedBodiesAreBadResponsesThatNeverQuoteTheSecret) {
  for (std::size_t cut : {std::size_t{1}, std::size_t{50}, kKv2Read.find("svc-app") + 3, kKv2Read.size() - 3}) {
    auto s = parse_kv2_data(path_of("secret", "nic/X"), 200, kKv2Read.substr(0, cut));
    ASSERT_FALSE(s) << cut;
    EXPECT_TRUE(s.error().is(Errc::vault_bad_response)) << s.error().describe();
    EXPECT_NE(s.error().message.find("truncated"), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find("svc-app"), std::string::npos);
    EXPECT_EQ(s.error().message.find("p&<"), std::string::npos);
    EXPECT_EQ(s.error().message.find("\\u0026"), std::string::npos);
  }
  auto empty = parse_kv2_data(path_of("secret", "nic/X"), 200, "");
  ASSERT_FALSE(empty);
  EXPECT_TRUE(empty.error().is(Errc::vault_bad_response));
}

TEST(VaultWire, NonJsonBodiesAreBadResponses) {
  for (std::string_view body :
       {"<html><body>502 Bad Gateway</body></html>", "null", "[1,2]", "{\"a\":1} trailing", "\xff\xfe"}) {
    auto s = parse_kv2_data(path_of("secret", "x"), 200, body);
    ASSERT_FALSE(s) << body;
    EXPECT_TRUE(s.error().is(Errc::vault_bad_response)) << body;
    EXPECT_EQ(classify(s.error().code), ErrorClass::transient);
  }
}

TEST(VaultWire, WrongShapesAreBadResponsesNamingTheField) {
  struct Case {
    std::string_view body;
    std::string_view field;
  };
  const Case cases[] = {
      {R"({"data":"x"})", "\"data\""},
      {R"({"nodata":{}})", "\"data\""},
      {R"({"data":{"data":null,"metadata":{"version":1}}})", "data.data"},
      {R"({"data":{"data":"str","metadata":{"version":1}}})", "data.data"},
      {R"({"data":{"data":{},"metadata":{"version":"3"}}})", "data.metadata.version"},
      {R"({"data":{"data":{},"metadata":{"version":3,"destroyed":"no"}}})", "data.metadata.destroyed"},
      {R"({"data":{"data":{},"metadata":{"version":3,"created_time":"yesterday"}}})", "data.metadata.created_time"},
      {R"({"data":{"data":{}}})", "data.metadata"},
  };
  for (const auto& c : cases) {
    auto s = parse_kv2_data(path_of("secret", "x"), 200, c.body);
    ASSERT_FALSE(s) << c.body;
    EXPECT_TRUE(s.error().is(Errc::vault_bad_response)) << c.body;
    EXPECT_NE(s.error().message.find(c.field), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("secret/data/x"), std::string::npos) << s.error().message;
  }
}

// --- KV v2 metadata -----------------------------------------------------------------------

// §1.5 body with the newer attribution fields.
constexpr std::string_view kMetadataNew =
    R"({"request_id":"9a8b7c6d-5e4f-3a2b-1c0d-efa9b8c7d6e5","lease_id":"","renewable":false,"lease_duration":0,)"
    R"("data":{"cas_required":false,"created_time":"2025-03-01T12:00:00.5Z","current_version":4,)"
    R"("custom_metadata":{"owner":"team-a"},"delete_version_after":"0s","last_updated_by":{"actor":"approle",)"
    R"("operation":"update","entity_id":"2f1e","client_id":"2f1e"},"max_versions":0,"oldest_version":0,)"
    R"("updated_time":"2025-03-05T09:00:00.123Z","versions":{)"
    R"("1":{"created_by":{"actor":"approle","operation":"create"},"created_time":"2025-03-01T12:00:00.5Z",)"
    R"("deleted_by":null,"deletion_time":"","destroyed":true},)"
    R"("2":{"created_by":{"actor":"approle","operation":"update"},"created_time":"2025-03-02T12:00:00Z",)"
    R"("deleted_by":null,"deletion_time":"","destroyed":false},)"
    R"("3":{"created_by":{"actor":"approle","operation":"update"},"created_time":"2025-03-04T10:11:12.345678901Z",)"
    R"("deleted_by":{"actor":"token","operation":"delete"},"deletion_time":"2025-03-05T08:00:00.000000001Z",)"
    R"("destroyed":false},)"
    R"("4":{"created_by":{"actor":"approle","operation":"update"},"created_time":"2025-03-05T09:00:00.123Z",)"
    R"("deleted_by":null,"deletion_time":"","destroyed":false}}},)"
    R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
    "\n";

// The same key as an older Vault writes it: no attribution fields.
constexpr std::string_view kMetadataOld =
    R"({"request_id":"x","lease_id":"","renewable":false,"lease_duration":0,"data":{"cas_required":false,)"
    R"("created_time":"2025-03-01T12:00:00.5Z","current_version":3,"custom_metadata":null,)"
    R"("delete_version_after":"0s","max_versions":0,"oldest_version":0,"updated_time":"2025-03-04T10:11:12Z",)"
    R"("versions":{"3":{"created_time":"2025-03-04T10:11:12Z","deletion_time":"2025-03-05T08:00:00Z",)"
    R"("destroyed":false}}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"})"
    "\n";

TEST(VaultWire, MetadataWithAttributionFields) {
  auto m = parse_kv2_metadata(path_of("secret", "app/db"), kMetadataNew);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->current_version, 4);
  EXPECT_EQ(m->oldest_version, 0);
  EXPECT_EQ(m->created_time, "2025-03-01T12:00:00.5Z");
  EXPECT_EQ(m->updated_time, "2025-03-05T09:00:00.123Z");
  EXPECT_EQ(m->custom_metadata.at("owner"), "team-a");
  EXPECT_EQ(m->delete_version_after, "0s");
  ASSERT_EQ(m->versions.size(), 4u);
  EXPECT_TRUE(m->versions.at(1).destroyed);
  EXPECT_EQ(m->versions.at(3).deletion_time, "2025-03-05T08:00:00.000000001Z");
  const auto t = nicsync::parse_rfc3339("2026-01-01T00:00:00Z").value();
  EXPECT_EQ(m->versions.at(1).state(t), SourceState::destroyed);
  EXPECT_EQ(m->versions.at(3).state(t), SourceState::deleted);
  EXPECT_EQ(m->current_state(t), SourceState::present);
  ASSERT_NE(m->current(), nullptr);
  EXPECT_EQ(m->current()->version, 4);
}

TEST(VaultWire, MetadataWithoutAttributionFieldsAndADeletedCurrentVersion) {
  auto m = parse_kv2_metadata(path_of("secret", "app/db"), kMetadataOld);
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->current_version, 3);
  EXPECT_TRUE(m->custom_metadata.empty());
  const auto before = nicsync::parse_rfc3339("2025-03-05T07:59:59Z").value();
  const auto after = nicsync::parse_rfc3339("2025-03-05T08:00:00Z").value();
  // A deletion time in the future still reads as present (delete_version_after), §1.2.
  EXPECT_EQ(m->current_state(before), SourceState::present);
  EXPECT_EQ(m->current_state(after), SourceState::deleted);
}

TEST(VaultWire, MetadataCurrentStateMissingWithoutVersions) {
  auto m = parse_kv2_metadata(path_of("secret", "k"),
                              R"({"data":{"current_version":0,"versions":{},"created_time":"","updated_time":""}})");
  ASSERT_TRUE(m) << m.error().describe();
  EXPECT_EQ(m->current_state(std::chrono::system_clock::now()), SourceState::missing);
}

TEST(VaultWire, MetadataWrongShapes) {
  for (std::string_view body :
       {R"({"data":{"versions":{}}})", R"({"data":{"current_version":1,"versions":[]}})",
        R"({"data":{"current_version":1,"versions":{"one":{}}}})",
        R"({"data":{"current_version":1,"versions":{"1":"x"}}})", R"({"data":{"current_version":1.5}})"}) {
    auto m = parse_kv2_metadata(path_of("secret", "k"), body);
    ASSERT_FALSE(m) << body;
    EXPECT_TRUE(m.error().is(Errc::vault_bad_response)) << body;
  }
}

TEST(VaultWire, MetadataWrongShapesNameTheVersionField) {
  struct Case {
    std::string_view body;
    std::string_view says;
  };
  const Case cases[] = {
      {R"({"data":{"current_version":2,"versions":{"2":{"destroyed":"no"}}}})",
       "\"data.versions.2.destroyed\" is not a boolean"},
      {R"({"data":{"current_version":12,"versions":{"12":{"created_time":7}}}})",
       "\"data.versions.12.created_time\" is not a string"},
      {R"({"data":{"current_version":3,"versions":{"3":{"deletion_time":"soon"}}}})",
       "\"data.versions.3.deletion_time\" is not an RFC 3339 time"},
      {R"({"data":{"current_version":1,"versions":{"1":[]}}})", "\"data.versions.1\" is not an object"},
      {R"({"data":{"current_version":1,"created_time":false}})", "\"data.created_time\" is not a string"},
  };
  for (const auto& c : cases) {
    auto m = parse_kv2_metadata(path_of("secret", "k"), c.body);
    ASSERT_FALSE(m) << c.body;
    EXPECT_NE(m.error().message.find(c.says), std::string::npos) << m.error().message;
  }
}

TEST(VaultWire, MetadataWithManyVersionsOverflowsTheScratchIntact) {
  // More than the stack room of one parse: the rest comes from the heap, nothing is lost.
  std::string body = R"({"data":{"current_version":300,"created_time":"2025-03-01T12:00:00Z","versions":{)";
  for (int v = 1; v <= 300; ++v) {
    body += fmt::format(R"({}"{}":{{"created_time":"2025-03-01T12:00:00Z","deletion_time":"","destroyed":{}}})",
                        v == 1 ? "" : ",", v, v % 7 == 0 ? "true" : "false");
  }
  body += "}}}";
  auto m = parse_kv2_metadata(path_of("secret", "k"), body);
  ASSERT_TRUE(m) << m.error().describe();
  ASSERT_EQ(m->versions.size(), 300U);
  EXPECT_TRUE(m->versions.at(294).destroyed);
  EXPECT_FALSE(m->versions.at(295).destroyed);
  EXPECT_EQ(m->created_time, "2025-03-01T12:00:00Z");
}

// --- KV v1, lists, mounts -----------------------------------------------------------------

TEST(VaultWire, Kv1Read) {
  constexpr std::string_view body =
      R"({"request_id":"x","lease_id":"","renewable":false,"lease_duration":2764800,)"
      R"("data":{"password":"a\u0026b","username":"u","ttl":"1h","n":3},"wrap_info":null,"warnings":null,)"
      R"("auth":null,"mount_type":"kv"})"
      "\n";
  auto s = parse_kv1_data(path_of("kv", "nic/X"), body);
  ASSERT_TRUE(s) << s.error().describe();
  EXPECT_EQ(s->kv, KvVersion::v1);
  EXPECT_EQ(s->version, 0);
  EXPECT_EQ(s->data.field("password").value()->expose(), "a&b");
  EXPECT_EQ(s->data.non_string_fields().at("n"), "number");
}

TEST(VaultWire, Lists) {
  auto keys = parse_list("LIST secret/metadata/",
                         R"({"request_id":"r","data":{"keys":["app/","db-creds","db-creds/"]},"mount_type":"kv"})");
  ASSERT_TRUE(keys);
  EXPECT_EQ(*keys, (std::vector<std::string>{"app/", "db-creds", "db-creds/"}));
  EXPECT_FALSE(parse_list("LIST x", R"({"data":{}})"));
  EXPECT_FALSE(parse_list("LIST x", R"({"data":{"keys":[1]}})"));
}

TEST(VaultWire, MountVersionRuleOfTheCli) {
  auto body = [](std::string_view options) {
    return fmt::format(R"({{"request_id":"r","data":{{"accessor":"kv_1a2b3c4d","config":{{"default_lease_ttl":0}},)"
                       R"("description":"key/value secret storage","local":false,"options":{},"path":"secret/",)"
                       R"("plugin_version":"","running_plugin_version":"v0.26.2+builtin","type":"kv","uuid":"u"}},)"
                       R"("wrap_info":null,"warnings":null,"auth":null,"mount_type":"system"}})",
                       options);
  };
  auto v2 = parse_mount("GET m", body(R"({"version":"2"})")).value();
  EXPECT_EQ(v2.version, KvVersion::v2);
  EXPECT_EQ(v2.path.str(), "secret");
  EXPECT_EQ(v2.type, "kv");
  EXPECT_EQ(parse_mount("GET m", body("null"))->version, KvVersion::v1);
  EXPECT_EQ(parse_mount("GET m", body(R"({"version":"1"})"))->version, KvVersion::v1);
  EXPECT_EQ(parse_mount("GET m", body(R"({"version":""})"))->version, KvVersion::v1);
  EXPECT_EQ(parse_mount("GET m", body("{}"))->version, KvVersion::v1);
  EXPECT_EQ(parse_mount("GET m", body(R"({"version":2})"))->version, KvVersion::v1);  // not a string

  auto nested = parse_mount("GET m", R"({"data":{"path":"kv/team-a/","type":"kv","options":{"version":"2"}}})");
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->path.str(), "kv/team-a");
  auto split = nested->split(VaultPath::parse("kv/team-a/nic/X").value());
  ASSERT_TRUE(split);
  EXPECT_EQ(split->mount.str(), "kv/team-a");
  EXPECT_EQ(split->key.str(), "nic/X");
  EXPECT_FALSE(parse_mount("GET m", R"({"data":{"type":"kv"}})"));
}

// --- auth ---------------------------------------------------------------------------------

TEST(VaultWire, AppRoleLoginAuthBlock) {
  constexpr std::string_view body =
      R"({"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
      R"("warnings":null,"auth":{"client_token":"hvs.CAESI\u0026x","accessor":"acc","policies":["default",)"
      R"("svc-app"],"token_policies":["default","svc-app"],"metadata":{"role_name":"svc-app"},)"
      R"("lease_duration":1200,"renewable":true,"entity_id":"e","token_type":"service","orphan":true,)"
      R"("mfa_requirement":null,"num_uses":0},"mount_type":"approle"})"
      "\n";
  auto a = parse_auth("POST auth/approle/login", body);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->token.secret().expose(), "hvs.CAESI&x");
  EXPECT_EQ(a->lease_duration, 1200s);
  EXPECT_TRUE(a->renewable);
  EXPECT_EQ(a->policies, (std::vector<std::string>{"default", "svc-app"}));
}

TEST(VaultWire, RenewSelfWithCapWarning) {
  constexpr std::string_view body =
      R"({"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,)"
      R"("warnings":["TTL of \"1h0m0s\" exceeded the effective max_ttl of \"15m30s\"; TTL value is capped )"
      R"(accordingly"],"auth":{"client_token":"hvs.x","accessor":"a","policies":["default"],)"
      R"("lease_duration":930,"renewable":true},"mount_type":"token"})";
  auto a = parse_auth("POST auth/token/renew-self", body);
  ASSERT_TRUE(a) << a.error().describe();
  EXPECT_EQ(a->lease_duration, 930s);
  ASSERT_EQ(a->warnings.size(), 1u);
  EXPECT_NE(a->warnings[0].find("capped"), std::string::npos);
}

TEST(VaultWire, AuthBlockShapes) {
  EXPECT_FALSE(parse_auth("x", R"({"auth":null})"));
  EXPECT_FALSE(parse_auth("x", R"({"auth":{"lease_duration":1}})"));
  EXPECT_FALSE(parse_auth("x", R"({"auth":{"client_token":"t","lease_duration":-1}})"));
  auto e = parse_auth("POST auth/approle/login", R"({"auth":{"client_token":"hvs.SECRET","lease_duration":"x"}})");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message.find("hvs.SECRET"), std::string::npos);
}

TEST(VaultWire, LookupSelf) {
  constexpr std::string_view body =
      R"({"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":"zT1",)"
      R"("creation_time":1741168800,"creation_ttl":3600,"display_name":"approle","entity_id":"e",)"
      R"("expire_time":"2025-03-05T11:00:00.123456789-04:00","explicit_max_ttl":0,"id":"hvs.CAESI",)"
      R"("issue_time":"2025-03-05T10:00:00.123456789Z","meta":{"role_name":"svc-app"},"num_uses":0,)"
      R"("orphan":true,"path":"auth/approle/login","policies":["default","svc-app"],"renewable":true,)"
      R"("ttl":1199,"type":"service"},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"token"})";
  auto i = parse_lookup_self(body);
  ASSERT_TRUE(i) << i.error().describe();
  EXPECT_EQ(i->ttl, 1199s);
  EXPECT_TRUE(i->renewable);
  EXPECT_EQ(i->display_name, "approle");
  ASSERT_TRUE(i->expire_time);
  EXPECT_EQ(*i->expire_time, nicsync::parse_rfc3339("2025-03-05T15:00:00.123456789Z").value());

  // Root token (§4.1): no expiry, renewable absent.
  auto root = parse_lookup_self(
      R"({"data":{"accessor":"a","display_name":"root","expire_time":null,"explicit_max_ttl":0,"id":"root",)"
      R"("path":"auth/token/root","policies":["root"],"ttl":0}})");
  ASSERT_TRUE(root) << root.error().describe();
  EXPECT_EQ(root->ttl, 0s);
  EXPECT_FALSE(root->renewable);
  EXPECT_FALSE(root->expire_time);
}

// --- errors -------------------------------------------------------------------------------

CallContext read_ctx() { return {"GET", "secret/data/nic/X", "read", "read", "no secret at secret/nic/X"}; }

TEST(VaultWire, FlattenGoMultierrors) {
  EXPECT_EQ(flatten_error("1 error occurred:\n\t* permission denied\n\n"), "permission denied");
  EXPECT_EQ(flatten_error("2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"),
            "permission denied; invalid token");
  EXPECT_EQ(flatten_error("  Vault is sealed\n"), "Vault is sealed");
}

TEST(VaultWire, PermissionDeniedNamesCapabilityAndPath) {
  auto e = error_from_response(read_ctx(), 403, "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}\n",
                               std::nullopt);
  EXPECT_TRUE(e.is(Errc::vault_permission_denied));
  EXPECT_EQ(e.message,
            "Vault denied read secret/data/nic/X (403: permission denied); grant the token's policy the \"read\" "
            "capability on path \"secret/data/nic/X\"");
  EXPECT_EQ(e.http_status, 403);
  EXPECT_EQ(classify(e.code), ErrorClass::permanent);
}

TEST(VaultWire, InvalidTokenWording) {
  constexpr std::string_view modern =
      "{\"errors\":[\"2 errors occurred:\\n\\t* permission denied\\n\\t* invalid "
      "token\\n\\n\"]}\n";
  EXPECT_TRUE(says_invalid_token(modern));
  EXPECT_FALSE(says_invalid_token("{\"errors\":[\"permission denied\"]}\n"));
  EXPECT_FALSE(says_invalid_token("not json invalid token"));
  auto e = error_from_response(read_ctx(), 403, modern, std::nullopt, true);
  EXPECT_TRUE(e.is(Errc::vault_token_invalid));
  EXPECT_EQ(classify(e.code), ErrorClass::auth);
}

TEST(VaultWire, SealedStandbyRateLimitAndFriends) {
  auto sealed = error_from_response(read_ctx(), 503, "{\"errors\":[\"Vault is sealed\"]}\n", std::nullopt);
  EXPECT_TRUE(sealed.is(Errc::vault_sealed));
  EXPECT_NE(sealed.message.find("unseal"), std::string::npos);

  auto standby = error_from_response(read_ctx(), 503, "{\"errors\":[\"no active Vault instance found\"]}\n", {});
  EXPECT_TRUE(standby.is(Errc::vault_unavailable));
  EXPECT_NE(standby.message.find("no active node"), std::string::npos);
  auto not_active = error_from_response(read_ctx(), 503, "{\"errors\":[\"node is not active\"]}\n", {});
  EXPECT_TRUE(not_active.is(Errc::vault_unavailable));

  auto limited = error_from_response(
      read_ctx(), 429, R"({"errors":["request path \"secret/data/nic/X\": rate limit quota exceeded"]})", 7000ms);
  EXPECT_TRUE(limited.is(Errc::vault_rate_limited));
  EXPECT_EQ(limited.retry_after, 7000ms);
  EXPECT_NE(limited.message.find("rate limit quota exceeded"), std::string::npos);

  EXPECT_TRUE(error_from_response(read_ctx(), 412, R"({"errors":["required index state not present"]})", {})
                  .is(Errc::vault_precondition));
  EXPECT_TRUE(error_from_response(read_ctx(), 500, "{\"errors\":[\"internal\"]}", {}).is(Errc::vault_unavailable));
  auto proxy = error_from_response(read_ctx(), 502, "<html>bad gateway</html>", {});
  EXPECT_TRUE(proxy.is(Errc::vault_unavailable));
  EXPECT_NE(proxy.message.find("not Vault's JSON"), std::string::npos);
  EXPECT_TRUE(error_from_response(read_ctx(), 501, "{}", {}).is(Errc::vault_unavailable));
  auto missing = error_from_response(read_ctx(), 404, "{\"errors\":[]}\n", {});
  EXPECT_TRUE(missing.is(Errc::vault_not_found));
  EXPECT_EQ(missing.message, "no secret at secret/nic/X (404)");
  auto bad = error_from_response(read_ctx(), 400, R"({"errors":["no data provided"]})", {});
  EXPECT_TRUE(bad.is(Errc::vault_bad_request));
  EXPECT_NE(bad.message.find("no data provided"), std::string::npos);
  EXPECT_TRUE(error_from_response(read_ctx(), 405, "{\"errors\":[]}", {}).is(Errc::vault_bad_request));
  EXPECT_TRUE(error_from_response(read_ctx(), 302, "", {}).is(Errc::vault_bad_response));
}

// --- scalars ------------------------------------------------------------------------------

TEST(VaultWire, GoParseBool) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"}) EXPECT_EQ(parse_go_bool(t), true) << t;
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"}) EXPECT_EQ(parse_go_bool(f), false) << f;
  for (std::string_view bad : {"yes", "on", "tRUE", "", " true"}) EXPECT_FALSE(parse_go_bool(bad)) << bad;
}

TEST(VaultWire, SecondsOrGoDuration) {
  EXPECT_EQ(parse_seconds_or_go_duration("30"), 30s);
  EXPECT_EQ(parse_seconds_or_go_duration("1m30s"), 90s);
  EXPECT_EQ(parse_seconds_or_go_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_seconds_or_go_duration("250ms"), 250ms);
  EXPECT_EQ(parse_seconds_or_go_duration("2h"), 2h);
  EXPECT_EQ(parse_seconds_or_go_duration("0"), 0ms);
  for (std::string_view bad : {"", "abc", "10x", "-5s", "1.2.3s", "s"}) {
    EXPECT_FALSE(parse_seconds_or_go_duration(bad)) << bad;
  }
}

}  // namespace
}  // namespace nicsync::vault::wire
