// Vault client configuration: VAULT_* environment variables fill only what the config left
// empty, validation errors say what to fix, and the strong path/namespace types.
#include <map>

#include <gtest/gtest.h>

#include "nicsync/vault/config.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::vault {
namespace {

using namespace std::chrono_literals;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(VaultConfig, EnvironmentFillsEmptyFields) {
  ClientConfig c;
  auto r = apply_environment(c, env_of({{"VAULT_ADDR", "https://vault:8200"},
                                        {"VAULT_TOKEN", "hvs.planted-token"},
                                        {"VAULT_NAMESPACE", "team-a/"},
                                        {"VAULT_CACERT", "/etc/ca.pem"},
                                        {"VAULT_CAPATH", "/etc/cas"},
                                        {"VAULT_CLIENT_CERT", "/c.pem"},
                                        {"VAULT_CLIENT_KEY", "/k.pem"},
                                        {"VAULT_SKIP_VERIFY", "T"},
                                        {"VAULT_TLS_SERVER_NAME", "vault.internal"},
                                        {"VAULT_CLIENT_TIMEOUT", "1m30s"},
                                        {"VAULT_MAX_RETRIES", "5"},
                                        {"CREDENTIALS_DIRECTORY", "/run/credentials/nicsyncd.service"}}));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(c.address, "https://vault:8200");
  EXPECT_EQ(c.auth.method, AuthMethod::token);
  EXPECT_EQ(c.auth.token.secret().expose(), "hvs.planted-token");
  EXPECT_EQ(c.vault_namespace.str(), "team-a");
  EXPECT_EQ(c.tls.ca_cert, "/etc/ca.pem");
  EXPECT_EQ(c.tls.ca_path, "/etc/cas");
  EXPECT_EQ(c.tls.client_cert, "/c.pem");
  EXPECT_EQ(c.tls.client_key, "/k.pem");
  EXPECT_EQ(c.tls.skip_verify, true);
  EXPECT_EQ(c.tls.server_name, "vault.internal");
  EXPECT_EQ(c.timeout, 90s);
  EXPECT_EQ(c.max_retries, 5);
  EXPECT_EQ(c.auth.credentials_directory, "/run/credentials/nicsyncd.service");
}

TEST(VaultConfig, TheConfigFileWins) {
  ClientConfig c;
  c.address = "https://from-config:8200";
  c.auth.method = AuthMethod::approle;
  c.auth.role_id_file = "role_id";
  c.auth.secret_id_file = "secret_id";
  c.vault_namespace = Namespace::parse("ns-config").value();
  c.tls.skip_verify = false;
  c.tls.ca_cert = "/config/ca.pem";
  c.tls.client_cert = "/config/c.pem";
  c.tls.client_key = "/config/k.pem";
  c.timeout = 5s;
  c.max_retries = 0;
  auto r = apply_environment(c, env_of({{"VAULT_ADDR", "https://env:8200"},
                                        {"VAULT_TOKEN", "hvs.env"},
                                        {"VAULT_NAMESPACE", "ns-env"},
                                        {"VAULT_SKIP_VERIFY", "true"},
                                        {"VAULT_CACERT", "/env/ca.pem"},
                                        {"VAULT_CLIENT_CERT", "/env/c.pem"},
                                        {"VAULT_CLIENT_KEY", "/env/k.pem"},
                                        {"VAULT_CLIENT_TIMEOUT", "60"},
                                        {"VAULT_MAX_RETRIES", "9"}}));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(c.address, "https://from-config:8200");
  EXPECT_EQ(c.auth.method, AuthMethod::approle);
  EXPECT_TRUE(c.auth.token.empty());
  EXPECT_EQ(c.vault_namespace.str(), "ns-config");
  EXPECT_EQ(c.tls.skip_verify, false);
  EXPECT_EQ(c.tls.ca_cert, "/config/ca.pem");
  EXPECT_EQ(c.tls.client_cert, "/config/c.pem");
  EXPECT_EQ(c.timeout, 5s);
  EXPECT_EQ(c.max_retries, 0);
}

TEST(VaultConfig, AgentAddressWinsAndEmptyMeansUnset) {
  ClientConfig c;
  ASSERT_TRUE(apply_environment(
      c,
      env_of({{"VAULT_ADDR", "https://a:8200"}, {"VAULT_AGENT_ADDR", "http://127.0.0.1:8100"}, {"VAULT_TOKEN", ""}})));
  EXPECT_EQ(c.address, "http://127.0.0.1:8100");
  EXPECT_EQ(c.auth.method, AuthMethod::none);
}

TEST(VaultConfig, BadVariablesAreNamedAndTokensNeverQuoted) {
  struct Case {
    std::map<std::string, std::string> env;
    std::string_view names;
  };
  const Case cases[] = {
      {{{"VAULT_SKIP_VERIFY", "maybe"}}, "VAULT_SKIP_VERIFY"},
      {{{"VAULT_CLIENT_TIMEOUT", "soon"}}, "VAULT_CLIENT_TIMEOUT"},
      {{{"VAULT_CLIENT_TIMEOUT", "0"}}, "VAULT_CLIENT_TIMEOUT"},
      {{{"VAULT_MAX_RETRIES", "-1"}}, "VAULT_MAX_RETRIES"},
      {{{"VAULT_MAX_RETRIES", "two"}}, "VAULT_MAX_RETRIES"},
      {{{"VAULT_CLIENT_CERT", "/c.pem"}}, "VAULT_CLIENT_KEY"},
      {{{"VAULT_CLIENT_KEY", "/k.pem"}}, "VAULT_CLIENT_CERT"},
      {{{"VAULT_NAMESPACE", "a//b"}}, "VAULT_NAMESPACE"},
  };
  for (const auto& c : cases) {
    auto env = c.env;
    env["VAULT_TOKEN"] = "hvs.planted-token";
    ClientConfig config;
    auto r = apply_environment(config, env_of(env));
    ASSERT_FALSE(r) << c.names;
    EXPECT_TRUE(r.error().is(Errc::config_invalid));
    EXPECT_NE(r.error().message.find(c.names), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find("planted"), std::string::npos);
  }
}

TEST(VaultConfig, Validate) {
  testing::TempDir dir;
  ClientConfig c;
  auto v = validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("VAULT_TOKEN"), std::string::npos);

  c.auth.method = AuthMethod::token;
  c.auth.token = Token(Secret("hvs.x"));
  EXPECT_TRUE(validate(c));

  c.address = "unix:///run/vault.sock";
  EXPECT_FALSE(validate(c));
  c.address = "http://127.0.0.1:8200";
  EXPECT_TRUE(validate(c));

  c.tls.client_cert = dir.file("missing.pem");
  c.tls.client_key = dir.file("missing.key");
  v = validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("missing.pem"), std::string::npos);
  EXPECT_NE(v.error().message.find("does not exist"), std::string::npos);
  testing::write_file(dir.file("c.pem"), "x");
  testing::write_file(dir.file("k.pem"), "x");
  c.tls.client_cert = dir.file("c.pem");
  c.tls.client_key = dir.file("k.pem");
  EXPECT_TRUE(validate(c));
  c.tls.ca_path = dir.file("c.pem");
  v = validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("not a directory"), std::string::npos);
  c.tls.ca_path = dir.path().string();
  EXPECT_TRUE(validate(c));

  c.auth.method = AuthMethod::approle;
  v = validate(c);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("role_id"), std::string::npos);
  c.auth.role_id_file = "role_id";
  c.auth.secret_id_file = "secret_id";
  EXPECT_TRUE(validate(c));
  c.auth.approle_mount = "a//b";
  EXPECT_FALSE(validate(c));

  c.auth.method = AuthMethod::token_file;
  EXPECT_FALSE(validate(c));
  c.auth.token_file = "token";
  c.max_retries = -1;
  EXPECT_FALSE(validate(c));
}

TEST(VaultTypes, Paths) {
  EXPECT_EQ(VaultPath::parse("/secret/nic/X/").value().str(), "secret/nic/X");
  EXPECT_TRUE(VaultPath::parse("").value().empty());
  EXPECT_TRUE(VaultPath::parse("/").value().empty());
  for (std::string_view bad : {"a//b", "a/./b", "a/../b", "..", "a\nb", "a?b", "a#b", "//", "a/\x7f"}) {
    auto r = VaultPath::parse(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(r.error().is(Errc::invalid_argument));
  }
  const auto a = VaultPath::parse("secret").value();
  const auto b = VaultPath::parse("nic/X").value();
  EXPECT_EQ((a / b).str(), "secret/nic/X");
  EXPECT_EQ((a / VaultPath()).str(), "secret");
  EXPECT_TRUE((a / b).starts_with(a));
  EXPECT_FALSE(VaultPath::parse("secretive/x").value().starts_with(a));
  EXPECT_EQ((a / b).strip_prefix(a), b);
  EXPECT_EQ(fmt::format("{}", KvPath{a, b}), "secret/nic/X");

  MountInfo m{a, "kv", KvVersion::v2};
  EXPECT_EQ(m.split(a / b).value(), (KvPath{a, b}));
  EXPECT_FALSE(m.split(a));
  EXPECT_FALSE(m.split(b));
  MountInfo unknown;  // no preflight endpoint: whole path as the key
  EXPECT_EQ(unknown.split(a / b).value().key, a / b);
}

TEST(VaultTypes, TokensNeverPrint) {
  Token t(Secret("hvs.planted"));
  EXPECT_EQ(fmt::format("{}", t), "***");
  EXPECT_EQ(Namespace::parse("/a/b/").value().str(), "a/b");
  EXPECT_FALSE(Namespace::parse("a/../b"));
}

}  // namespace
}  // namespace nicsync::vault
