// Fuzz target: the configuration loader (TOML text → validated app::Config). Any bytes give a
// Config or a config_invalid error that names the file; a Config that validates is one the
// daemon can start from (its Vault paths parse, its destinations accept their settings).
#include "nicsync/app/config.hpp"

#include "fuzz/fuzz_target.hpp"
#include "nicsync/vault/types.hpp"

NICSYNC_FUZZ_TARGET(config) {
  using namespace nicsync;
  app::ConfigEnvironment env;  // as under systemd
  env.state_directory = "/var/lib/nicsync";
  env.credentials_directory = "/run/credentials/nicsyncd.service";
  auto config = app::parse_config(fuzz::as_text(data, size), "fuzz.toml", env);
  if (!config) {
    NICSYNC_FUZZ_CHECK(config, config.error().is(Errc::config_invalid));
    NICSYNC_FUZZ_CHECK(config, config.error().message.starts_with("fuzz.toml"));
    return 0;
  }
  auto vault_path_ok = [](std::string_view p) { return vault::VaultPath::parse(p).has_value(); };
  for (const auto& m : config->mappings) {
    NICSYNC_FUZZ_CHECK(config, vault_path_ok(m.path));
    auto [mount, key] = app::split_mount(m.path);
    NICSYNC_FUZZ_CHECK(config, !mount.empty() && !key.empty());
    NICSYNC_FUZZ_CHECK(config, vault_path_ok(mount) && vault_path_ok(key));
    NICSYNC_FUZZ_CHECK(config, Gstin::parse(m.gstin.str(), config->gstin_mode).has_value());
    NICSYNC_FUZZ_CHECK(config, !m.destinations.empty());
  }
  for (const auto& s : config->mapping_sets) {
    NICSYNC_FUZZ_CHECK(config, vault_path_ok(s.prefix));
    NICSYNC_FUZZ_CHECK(config, !s.destinations.empty());
  }
  for (const auto& d : config->destinations) {
    if (d.auth_secret) NICSYNC_FUZZ_CHECK(config, vault_path_ok(d.auth_secret->path));
    for (const auto& h : d.secret_headers) NICSYNC_FUZZ_CHECK(config, vault_path_ok(h.secret.path));
    if (const auto* w = std::get_if<destinations::WebhookConfig>(&d.settings)) {
      // Header lines go to the wire as they are: no line breaks (header injection).
      for (const auto& h : w->headers) NICSYNC_FUZZ_CHECK(config, h.value.find_first_of("\r\n") == std::string::npos);
      // The daemon adds the secret headers (values from Vault) before it builds the destination.
      destinations::WebhookConfig settings = *w;
      for (const auto& h : d.secret_headers) {
        NICSYNC_FUZZ_CHECK(config, h.prefix.find_first_of("\r\n") == std::string::npos);
        settings.secret_headers.push_back(
            {h.name, h.prefix, []() -> boost::asio::awaitable<Result<Secret>> { co_return Secret("x"); }});
      }
      NICSYNC_FUZZ_CHECK(config, settings.validate().has_value());
    }
    // The destinations' factories refuse settings that do not validate.
    const bool valid = std::visit([](const auto& settings) { return settings.validate().has_value(); }, d.settings);
    NICSYNC_FUZZ_CHECK(config, valid);
  }
  return 0;
}
