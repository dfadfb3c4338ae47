#include "nicsync/app/cli.hpp"

#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "nicsync/app/config.hpp"
#include "nicsync/app/daemon.hpp"
#include "nicsync/app/logging.hpp"
#include "nicsync/core/build_info.hpp"

namespace nicsync::app {

int run_cli(int argc, char** argv) {
  CLI::App cli{"nicsyncd keeps NIC e-invoicing API credentials in step between Vault and ClearTax"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", std::string(build_info::kVersion));

  std::string config_path = "/etc/nicsync/nicsyncd.toml";
  auto* run = cli.add_subcommand("run", "Run the daemon in the foreground (as systemd does)");
  run->add_option("-c,--config", config_path, "Configuration file")->capture_default_str();

  auto* version = cli.add_subcommand("version", "Print the version and build information");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = cli.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (version->parsed()) {
    std::cout << fmt::format("nicsyncd {} ({}, {})\n", build_info::kVersion, build_info::kCompiler,
                             build_info::kBuildType);
    return kExitOk;
  }
  if (run->parsed()) {
    auto config = load_config_file(config_path);
    if (!config) {
      std::cerr << "nicsyncd: configuration invalid:\n" << config.error().message << "\n";
      return kExitConfig;
    }
    setup_logging(config->log);
    return run_daemon(*config);
  }
  return kExitUsage;
}

}  // namespace nicsync::app
