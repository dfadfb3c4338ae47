// nicsync-test-vault: the test Vault as a standalone program (for e2e tests, benchmarks and the
// demo). Prints exactly one line, "listening on <address>", once it serves; runs until SIGTERM
// or SIGINT. Mounts secret/ (KV v2) and kv/ (KV v1). With --audit-address, a socket audit
// device writes every request's entries there (as a Vault restarted with it enabled: no probe).
#include <csignal>
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "fake_vault.hpp"

int main(int argc, char** argv) {
  // stdout carries only the "listening on" line; everything else goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("test-vault"));
  nicsync::fakes::FakeVaultOptions options;
  long ping_ms = options.event_ping_interval.count();
  CLI::App app{"nicsync-test-vault: a test HashiCorp Vault (KV v1/v2, tokens, AppRole, events)"};
  app.add_option("--listen", options.listen, "host:port to listen on (port 0 picks one)");
  app.add_option("--tls-cert", options.tls_cert_file, "PEM certificate chain (enables TLS with --tls-key)");
  app.add_option("--tls-key", options.tls_key_file, "PEM private key");
  app.add_option("--tls-client-ca", options.tls_client_ca_file, "require client certificates signed by this CA");
  app.add_option("--root-token", options.root_token, "the root token's id");
  app.add_flag("--enterprise", options.enterprise, "Vault Enterprise: namespaces, X-Vault-Index, events websocket");
  app.add_flag("--legacy-permission-denied", options.legacy_permission_denied,
               "dead tokens get the old plain \"permission denied\"");
  app.add_option("--event-ping-ms", ping_ms, "websocket ping interval for event subscribers");
  nicsync::fakes::AuditDeviceOptions audit;
  std::string audit_format = "legacy";
  long audit_timeout_ms = audit.write_timeout.count();
  app.add_option("--audit-address", audit.address,
                 "socket audit device: host:port (tcp) or a socket file (with --audit-socket-type unix)");
  app.add_option("--audit-socket-type", audit.socket_type, "tcp or unix")->check(CLI::IsMember({"tcp", "unix"}));
  app.add_option("--audit-format", audit_format,
                 "field order: legacy (Vault <= 1.16, OpenBao) or sorted (Vault 1.18-1.20)")
      ->check(CLI::IsMember({"legacy", "sorted"}));
  app.add_option("--audit-prefix", audit.prefix, "bytes written before each entry");
  app.add_option("--audit-salt", audit.salt, "HMAC key (default: a random UUID)");
  app.add_flag("--audit-log-raw", audit.log_raw, "write values in clear instead of HMAC'd");
  app.add_option("--audit-write-timeout-ms", audit_timeout_ms, "the device's write (and dial) timeout");
  CLI11_PARSE(app, argc, argv);
  options.event_ping_interval = std::chrono::milliseconds(ping_ms);
  if (!audit.address.empty()) {
    audit.format = audit_format == "sorted" ? nicsync::fakes::AuditDeviceOptions::Format::sorted
                                            : nicsync::fakes::AuditDeviceOptions::Format::legacy;
    audit.write_timeout = std::chrono::milliseconds(audit_timeout_ms);
    options.audit_devices.push_back(audit);
  }

  boost::asio::io_context io;
  nicsync::fakes::FakeVault vault(io.get_executor(), options);
  if (auto started = vault.start(); !started) {
    std::cerr << "nicsync-test-vault: " << started.error().describe() << "\n";
    return 1;
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    vault.stop();
    io.stop();
  });
  std::cout << "listening on " << vault.address() << std::endl;
  io.run();
  return 0;
}
