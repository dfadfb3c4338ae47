#include "nicsync/app/daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "nicsync/app/cli.hpp"
#include "nicsync/core/build_info.hpp"
#include "nicsync/http/server.hpp"

namespace nicsync::app {
namespace asio = boost::asio;

int run_daemon(const Config& config) {
  asio::io_context io(1);
  http::Router router;
  router.add("GET", "/healthz", [](const http::ServerRequest&) -> asio::awaitable<http::ServerResponse> {
    co_return http::ServerResponse::text(200, "ok\n");
  });
  http::ServerOptions options;
  options.listen = config.api.listen;
  http::Server server(io.get_executor(), options, router.handler());
  if (auto started = server.start(); !started) {
    spdlog::critical("cannot start the API listener: {}", started.error().message);
    return kExitUnavailable;
  }
  spdlog::info("nicsyncd {} listening on http://{} (config {})", build_info::kVersion, server.local_address(),
               config.source);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int signo) {
    if (ec) return;
    spdlog::info("received signal {}, stopping", signo);
    asio::co_spawn(io, server.stop(std::chrono::seconds(5)), asio::detached);
  });
  io.run();
  spdlog::info("stopped");
  return kExitOk;
}

}  // namespace nicsync::app
