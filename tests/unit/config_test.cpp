#include "nicsync/app/config.hpp"

#include <gtest/gtest.h>

#include "testing/temp_dir.hpp"

namespace nicsync::app {
namespace {

const char* kGood = R"(
state_dir = "/var/lib/nicsync-test"
gstin_validation = "strict"

[vault]
address = "https://vault.example.internal:8200"
namespace = "finance/"
timeout = "20s"
max_retries = 3

[vault.auth]
method = "approle"
role_id_file = "approle-role-id"
secret_id_file = "approle-secret-id"

[vault.tls]
ca_file = "/etc/nicsync/ca.pem"

[watch]
mode = "poll"
poll_interval = "30s"
jitter = "2s"
concurrency = 8

[api]
listen = "127.0.0.1:19464"
token_file = "/etc/nicsync/api-token"

[log]
level = "debug"
format = "json"

[sync]
backoff_base = "2s"
backoff_cap = "10m"
max_age = "12h"
history_retention = "30d"

[[destination]]
name = "cleartax"
kind = "cleartax"
base_url = "https://api-sandbox.clear.in"
auth = "client_secret"
secret_path = "secret/nicsync/cleartax"
secret_key = "client_secret"
concurrency = 4
rate_limit = 5
burst = 10

[[destination]]
name = "erp"
kind = "webhook"
url = "https://erp.example.internal/nic/{gstin}"
method = "PUT"
success_statuses = [200, 204]
headers = { "X-Source" = "nicsync" }
[[destination.secret_header]]
name = "Authorization"
prefix = "Bearer "
secret_path = "secret/nicsync/erp"
secret_key = "token"

[[mapping]]
gstin = "07AAFCD5862R1ZX"
path = "secret/nic/07AAFCD5862R1ZX"
destinations = ["cleartax", "erp"]

[[mapping]]
gstin = "27AAPFU0939F1ZV"
path = "kv/team/27AAPFU0939F1ZV"
destinations = ["cleartax"]
username_key = "user"
password_key = "pass"

[[mapping_set]]
prefix = "secret/nic/bulk/"
destinations = ["cleartax"]
)";

TEST(Config, DefaultsWhenEmpty) {
  auto c = parse_config("", "empty.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->api.listen, "127.0.0.1:9464");
  EXPECT_EQ(c->log.level, LogLevel::info);
  EXPECT_EQ(c->state_dir, "/var/lib/nicsync");
  EXPECT_EQ(c->gstin_mode, GstinMode::strict);
  EXPECT_EQ(c->watch.mode, WatchMode::auto_detect);
  EXPECT_EQ(c->watch.poll_interval, std::chrono::seconds(60));
  EXPECT_EQ(c->sync.backoff.base, std::chrono::seconds(1));
  EXPECT_EQ(c->sync.backoff.cap, std::chrono::minutes(5));
  EXPECT_EQ(c->sync.max_credential_age.count(), 0) << "off unless set";
}

TEST(Config, MaxCredentialAge) {
  auto c = parse_config("[sync]\nmax_credential_age = \"90d\"\n", "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->sync.max_credential_age, std::chrono::hours(24 * 90));
  auto bad = parse_config("[sync]\nmax_credential_age = \"ninety days\"\n", "t.toml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("t.toml:2"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("sync.max_credential_age"), std::string::npos) << bad.error().message;
}

TEST(Config, ReadsEverySection) {
  auto c = parse_config(kGood, "good.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->state_dir, "/var/lib/nicsync-test");
  EXPECT_EQ(c->vault.address, "https://vault.example.internal:8200");
  EXPECT_EQ(c->vault.vault_namespace.str(), "finance");
  EXPECT_EQ(c->vault.timeout, std::chrono::seconds(20));
  EXPECT_EQ(c->vault.auth.method, vault::AuthMethod::approle);
  EXPECT_EQ(c->vault.auth.secret_id_file, "approle-secret-id");
  EXPECT_EQ(c->vault.tls.ca_cert, "/etc/nicsync/ca.pem");
  EXPECT_EQ(c->watch.mode, WatchMode::poll);
  EXPECT_EQ(c->watch.jitter, std::chrono::seconds(2));
  EXPECT_EQ(c->api.token_file, "/etc/nicsync/api-token");
  EXPECT_EQ(c->log.format, LogFormat::json);
  EXPECT_EQ(c->sync.backoff.max_age, std::chrono::hours(12));
  EXPECT_EQ(c->sync.history_retention, std::chrono::hours(24 * 30));
  ASSERT_EQ(c->destinations.size(), 2u);
  const auto& ct = c->destinations[0];
  EXPECT_EQ(ct.kind(), "cleartax");
  EXPECT_EQ(ct.lane.concurrency, 4);
  EXPECT_EQ(ct.lane.rate_per_second, 5);
  ASSERT_TRUE(ct.auth_secret);
  EXPECT_EQ(ct.auth_secret->path, "secret/nicsync/cleartax");
  EXPECT_EQ(std::get<destinations::ClearTaxConfig>(ct.settings).base_url, "https://api-sandbox.clear.in");
  EXPECT_EQ(std::get<destinations::ClearTaxConfig>(ct.settings).state_dir, "/var/lib/nicsync-test");
  const auto& erp = c->destinations[1];
  EXPECT_EQ(erp.kind(), "webhook");
  const auto& w = std::get<destinations::WebhookConfig>(erp.settings);
  EXPECT_EQ(w.method, "PUT");
  EXPECT_EQ(w.success_statuses, (std::vector<int>{200, 204}));
  ASSERT_EQ(erp.secret_headers.size(), 1u);
  EXPECT_EQ(erp.secret_headers[0].prefix, "Bearer ");
  ASSERT_EQ(c->mappings.size(), 2u);
  EXPECT_EQ(c->mappings[0].gstin.str(), "07AAFCD5862R1ZX");
  EXPECT_EQ(c->mappings[0].path, "secret/nic/07AAFCD5862R1ZX");
  EXPECT_EQ(c->mappings[0].destinations, (std::vector<std::string>{"cleartax", "erp"}));
  EXPECT_EQ(c->mappings[0].username_key, "username");
  EXPECT_EQ(c->mappings[0].password_key, "password");
  EXPECT_EQ(c->mappings[1].gstin.str(), "27AAPFU0939F1ZV");
  EXPECT_EQ(c->mappings[1].path, "kv/team/27AAPFU0939F1ZV");
  EXPECT_EQ(c->mappings[1].destinations, (std::vector<std::string>{"cleartax"}));
  EXPECT_EQ(c->mappings[1].username_key, "user");
  EXPECT_EQ(c->mappings[1].password_key, "pass");
  ASSERT_EQ(c->mapping_sets.size(), 1u);
  EXPECT_EQ(c->mapping_sets[0].prefix, "secret/nic/bulk/");
}

// Mappings keep their own GSTIN, path, destinations and field names, in file order, while the
// destinations and field names they have in common are held once.
TEST(Config, MappingListKeepsEachMappingAndSharesWhatTheyHaveInCommon) {
  MappingList list;
  auto add = [&](const char* gstin, std::string path, std::vector<std::string> dests, std::string user) {
    list.push_back({Gstin::parse(gstin).value(), std::move(path), std::move(dests), std::move(user), "password"});
  };
  add("07AAFCD5862R1ZX", "secret/nic/07AAFCD5862R1ZX", {"cleartax"}, "username");
  add("27AAPFU0939F1ZV", "kv/a-much-longer-team-folder/27AAPFU0939F1ZV", {"cleartax", "erp"}, "username");
  add("29AAGCB7383J1Z4", "secret/nic/29AAGCB7383J1Z4", {"cleartax"}, "username");
  add("07AAFCD5862R1ZX", "x/y", {"cleartax"}, "user");  // same route but for the field name
  list.shrink_to_fit();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_FALSE(list.empty());
  std::vector<std::string> seen;
  for (const auto& m : list) {
    seen.push_back(m.gstin.str() + " " + std::string(m.path) + " " + m.username_key + "/" + m.password_key + " " +
                   std::to_string(m.destinations.size()));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"07AAFCD5862R1ZX secret/nic/07AAFCD5862R1ZX username/password 1",
                                            "27AAPFU0939F1ZV kv/a-much-longer-team-folder/27AAPFU0939F1ZV "
                                            "username/password 2",
                                            "29AAGCB7383J1Z4 secret/nic/29AAGCB7383J1Z4 username/password 1",
                                            "07AAFCD5862R1ZX x/y user/password 1"}));
  EXPECT_EQ(list[1].destinations, (std::vector<std::string>{"cleartax", "erp"}));
  // Held once: the first and third mappings read the same destinations and field names.
  EXPECT_EQ(&list[0].destinations, &list[2].destinations);
  EXPECT_EQ(&list[0].username_key, &list[2].username_key);
  EXPECT_NE(&list[0].destinations, &list[1].destinations);
  EXPECT_NE(&list[0].username_key, &list[3].username_key);
  // A copy is a list of its own.
  const MappingList copy = list;
  list.push_back({Gstin::parse("07AAFCD5862R1ZX").value(), "secret/other", {"erp"}, "username", "password"});
  EXPECT_EQ(copy.size(), 4u);
  EXPECT_EQ(copy[3].path, "x/y");
  EXPECT_EQ(list[4].path, "secret/other");
  EXPECT_THROW((void)list[5], std::out_of_range);
}

TEST(Config, EnvironmentDefaultsForSystemd) {
  ConfigEnvironment env;
  env.state_directory = "/var/lib/nicsync";
  env.credentials_directory = "/run/credentials/nicsyncd.service";
  auto c = parse_config("", "x.toml", env);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state_dir, "/var/lib/nicsync");
  EXPECT_EQ(c->vault.auth.credentials_directory, "/run/credentials/nicsyncd.service");
}

// Each broken file gives one documented error naming file, line and key.
struct Broken {
  const char* text;
  const char* expected;
};

const Broken kBroken[] = {
    {"[api]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n", "t.toml:3: api.listn: unknown key"},
    {"[lgo]\nlevel = \"info\"\n", "t.toml:1: lgo: unknown key"},
    {"[api]\nlisten = 9464\n", "t.toml:2: api.listen: expected an address such as \"127.0.0.1:9464\", got an integer"},
    {"[log]\nlevel = \"loud\"\n", "t.toml:2: log.level: \"loud\" is not a level"},
    {"[api]\nlisten = \"localhost\"\n", "api.listen: listen address \"localhost\" is invalid: the port is missing"},
    {"[watch]\npoll_interval = \"30\"\n", "t.toml:2: watch.poll_interval: invalid duration \"30\": a unit is missing"},
    {"[watch]\npoll_interval = \"10ms\"\n", "watch.poll_interval: must be between 100ms and 1d"},
    {"[watch]\nmode = \"push\"\n", "watch.mode: \"push\" is not a mode"},
    {"[vault]\naddress = \"vault:8200\"\n", "vault.address: must start with https:// or http://"},
    {"[vault.auth]\nmethod = \"approle\"\n", "vault.auth.method: approle needs role_id_file and secret_id_file"},
    {"[vault.auth]\nmethod = \"kubernetes\"\n", "vault.auth.method: \"kubernetes\" is not supported"},
    {"[[destination]]\nname = \"c\"\nkind = \"cleartax\"\n",
     "destination[1].kind: a cleartax destination needs secret_path and secret_key"},
    {"[[destination]]\nname = \"w\"\nkind = \"smtp\"\n", "destination[1].kind: must be \"cleartax\" or \"webhook\""},
    // A destination's own check names the key that is wrong, not the first URL of the table.
    {"[[destination]]\nname = \"c\"\nkind = \"cleartax\"\nsecret_path = \"secret/x/y\"\nsecret_key = \"k\"\n"
     "token_base_url = \"ftp://auth.clear.in\"\n",
     "t.toml:6: destination[1].token_base_url: destination \"c\": token_base_url: must start with https://"},
    {"[[destination]]\nname = \"c\"\nkind = \"cleartax\"\nsecret_path = \"secret/x/y\"\nsecret_key = \"k\"\n"
     "base_url = \"http://api.clear.in\"\n",
     "t.toml:6: destination[1].base_url: destination \"c\": base_url: must use https://"},
    {"[[destination]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://x/{gstin}\"\nbody = '{\"a\": {nope}}'\n",
     "t.toml:5: destination[1].body: destination \"w\": body_template: "},
    {"[[destination]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://x/{gstin}\"\nmethod = \"post\"\n",
     "t.toml:5: destination[1].method: destination \"w\": method: must be an HTTP method"},
    {"[[destination]]\nname = \"w\"\nkind = \"webhook\"\n", "destination[1].kind: a webhook needs url"},
    {"[[destination]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://x/{gstin}\"\n"
     "[[destination]]\nname = \"a\"\nkind = \"webhook\"\nurl = \"https://y/{gstin}\"\n",
     "destination[2].name: destination name \"a\" is used twice"},
    {"[[mapping]]\ngstin = \"27AAPFU0939F1ZO\"\npath = \"secret/nic/x\"\ndestinations = [\"c\"]\n",
     "t.toml:2: mapping[1].gstin: GSTIN \"27AAPFU0939F1ZO\" is invalid: position 15 (check character) is 'O', "
     "expected 'V'"},
    {"[[mapping]]\ngstin = \"27AAPFU0939F1ZV\"\npath = \"/secret/nic/x\"\ndestinations = []\n",
     "mapping[1].path: must not start with '/'"},
    {"[[mapping]]\ngstin = \"27AAPFU0939F1ZV\"\npath = \"secret//nic\"\ndestinations = []\n",
     "mapping[1].path: has an empty, '.' or '..' segment"},
    {"[[mapping]]\ngstin = \"27AAPFU0939F1ZV\"\npath = \"secret/nic/x\"\ndestinations = [\"nope\"]\n",
     "mapping[1].destinations: \"nope\" is not a configured [[destination]] name"},
    {"[[mapping_set]]\nprefix = \"secret/nic\"\ndestinations = []\n", "mapping_set[1].prefix: must end with '/'"},
    {"state_dir = \"relative\"\n", "t.toml:1: state_dir: must be an absolute path"},
    {"[api\nlisten = 1\n", "t.toml:1:"},
};

TEST(Config, BinaryInputIsNotATextFile) {
  const char raw[] = "x = \"\x01\x02\"\n\x00\x00";
  const std::string binary(raw, sizeof raw - 1);
  auto c = parse_config(binary, "t.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("not a text file"), std::string::npos) << c.error().message;
}

TEST(Config, EveryErrorNamesFileLineAndKey) {
  for (const auto& b : kBroken) {
    auto c = parse_config(b.text, "t.toml");
    ASSERT_FALSE(c) << b.text;
    EXPECT_TRUE(c.error().is(Errc::config_invalid));
    EXPECT_NE(c.error().message.find(b.expected), std::string::npos)
        << "config:\n"
        << b.text << "\nexpected: " << b.expected << "\ngot: " << c.error().message;
  }
}

TEST(Config, SandboxGstinsNeedSandboxMode) {
  const char* text =
      "[[destination]]\nname = \"c\"\nkind = \"cleartax\"\nsecret_path = \"secret/x/y\"\n"
      "secret_key = \"k\"\n[[mapping]]\ngstin = \"29AAFCD5862R000\"\npath = \"secret/nic/x\"\n"
      "destinations = [\"c\"]\n";
  auto strict = parse_config(text, "t.toml");
  ASSERT_FALSE(strict);
  EXPECT_NE(strict.error().message.find("gstin_validation = \"sandbox\""), std::string::npos);
  auto sandbox = parse_config(std::string("gstin_validation = \"sandbox\"\n") + text, "t.toml");
  ASSERT_TRUE(sandbox) << sandbox.error().message;
}

TEST(Config, DeeplyNestedOrHugeInputIsRefusedCleanly) {
  std::string nested = "a = " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  auto c = parse_config(nested, "deep.toml");
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(Errc::config_invalid));
}

// toml++ recurses once per table level and overflows the stack at some 30,000 levels; only
// arrays and inline tables have a limit of its own. Deep dotted keys are refused first.
TEST(Config, DeeplyDottedKeysAndTableHeadersAreRefusedBeforeTomlSeesThem) {
  std::string dotted = "a";
  for (int i = 0; i < 200000; ++i) dotted += ".a";
  for (const std::string& text :
       {dotted + " = 1\n", "[" + dotted + "]\n", "x = { " + dotted + " = 1 }\n", "# one\n\n[[" + dotted + "]]\n"}) {
    auto c = parse_config(text, "deep.toml");
    ASSERT_FALSE(c);
    EXPECT_TRUE(c.error().is(Errc::config_invalid));
    EXPECT_NE(c.error().message.find("deep.toml:"), std::string::npos) << c.error().message;
    EXPECT_NE(c.error().message.find("more than 1000 dotted key parts"), std::string::npos) << c.error().message;
  }
  // Dots in strings of every kind (escaped quotes, multi-line, quoted keys) and in comments are
  // not key parts: this file is valid.
  const std::string dots(5000, '.');
  const std::string text = "# " + dots + "\n[[destination]]\nname = \"w\"\nkind = \"webhook\"\n" +
                           "url = \"https://x/" + dots + "/{gstin}\"\nbody = '''\n{\"x\": \"" + dots + "\"}\n'''\n" +
                           "[destination.headers]\n\"X-" + dots + "\" = '" + dots + "'\n\"X-2\" = \"\\\"" + dots +
                           "\"\n\"X-3\" = \"\"\"" + dots + "\"\"\"\"\"\n'X-4' = '''" + dots + "''''\n";
  auto c = parse_config(text, "dots.toml");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->destinations.size(), 1u);
  EXPECT_EQ(std::get<destinations::WebhookConfig>(c->destinations[0].settings).headers.size(), 4u);
}

TEST(Config, KeysRememberTheirLinesForLaterChecks) {
  auto c = parse_config("state_dir = \"/x\"\n\n[api]\ntoken_file = \"/t\"\n[vault.tls]\nca_file = \"/ca\"\n", "w.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->where("api.token_file"), "w.toml:4: api.token_file");
  EXPECT_EQ(c->where("vault.tls.ca_file"), "w.toml:6: vault.tls.ca_file");
  EXPECT_EQ(c->where("api.tls_cert_file"), "w.toml: api.tls_cert_file");
}

TEST(Config, MissingFileSaysWhatToDo) {
  auto c = load_config_file("/nonexistent/nicsyncd.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("cannot open config file"), std::string::npos);
  EXPECT_NE(c.error().message.find("--config"), std::string::npos);
}

TEST(Config, ShippedExampleAndDemoConfigsAreValid) {
  const char* src = std::getenv("NICSYNC_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  auto example = load_config_file(std::string(src) + "/config/nicsyncd.toml", {});
  EXPECT_TRUE(example) << (example ? "" : example.error().message);
  // scripts/demo fills in the @...@ placeholders of the demo config.
  std::string demo = testing::read_file(std::string(src) + "/config/demo.toml");
  for (const auto& [from, to] :
       std::vector<std::pair<std::string, std::string>>{{"@STATE_DIR@", "/tmp/nicsync-demo/state"},
                                                        {"@VAULT_PORT@", "18200"},
                                                        {"@CLEARTAX_PORT@", "18280"},
                                                        {"@API_PORT@", "9464"}}) {
    ASSERT_NE(demo.find(from), std::string::npos) << from;
    for (auto at = demo.find(from); at != std::string::npos; at = demo.find(from)) demo.replace(at, from.size(), to);
  }
  auto c = parse_config(demo, "demo.toml");
  EXPECT_TRUE(c) << (c ? "" : c.error().message);
  if (c) {
    EXPECT_EQ(c->mappings.size(), 3u);
  }
}

TEST(Config, SplitMount) {
  EXPECT_EQ(split_mount("secret/nic/X"), (std::pair<std::string, std::string>{"secret", "nic/X"}));
  EXPECT_EQ(split_mount("kv/x"), (std::pair<std::string, std::string>{"kv", "x"}));
}

}  // namespace
}  // namespace nicsync::app
