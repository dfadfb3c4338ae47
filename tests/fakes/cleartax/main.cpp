// nicsync-test-cleartax: the test ClearTax as a standalone program. Prints exactly one line,
// "listening on <url>", to stdout once it serves; runs until SIGTERM or SIGINT.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "fakes/cleartax/fake_cleartax.hpp"
#include "nicsync/core/duration.hpp"

int main(int argc, char** argv) {
  namespace asio = boost::asio;
  using nicsync::fakes::FakeClearTax;

  CLI::App cli{"Test ClearTax: token endpoint, store_nic_credentials, /hooks/ recorder and /__admin/ API"};
  nicsync::fakes::FakeClearTaxOptions options;
  std::string validity = "6h";
  cli.add_option("--listen", options.server.listen, "host:port to listen on (port 0 picks one)")->capture_default_str();
  cli.add_option("--tls-cert", options.server.tls_cert_file, "PEM certificate chain (enables TLS)");
  cli.add_option("--tls-key", options.server.tls_key_file, "PEM private key");
  cli.add_option("--client-secret", options.client_secrets, "accepted x-clear-client-secret (repeatable)");
  cli.add_option("--auth-token", options.auth_tokens, "accepted static user auth token (repeatable)");
  cli.add_option("--token-validity", validity, "access token lifetime, e.g. 6h, or \"never\"")->capture_default_str();
  cli.add_option("--daily-token-limit", options.daily_token_limit, "token calls per client secret per UTC day")
      ->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (validity == "never") {
    options.token_validity.reset();
  } else {
    auto d = nicsync::parse_duration(validity);
    if (!d) {
      std::cerr << "nicsync-test-cleartax: --token-validity: " << d.error().message << "\n";
      return 2;
    }
    options.token_validity = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }

  asio::io_context io(1);
  FakeClearTax fake(io.get_executor(), std::move(options));
  if (auto started = fake.start(); !started) {
    std::cerr << "nicsync-test-cleartax: " << started.error().message << "\n";
    return 1;
  }
  std::cout << "listening on " << fake.base_url() << std::endl;

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (!ec) asio::co_spawn(io, fake.stop(std::chrono::seconds(1)), asio::detached);
  });
  io.run();
  return 0;
}
