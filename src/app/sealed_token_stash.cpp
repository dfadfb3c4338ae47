#include "app/sealed_token_stash.hpp"

#include <fmt/format.h>

namespace nicsync::app {
namespace asio = boost::asio;

asio::awaitable<Result<std::optional<Secret>>> SealedTokenStash::load(std::string name) {
  auto sealed = co_await store_.read_sealed(name);
  if (!sealed) co_return sealed.error();
  if (!*sealed) co_return std::optional<Secret>();
  auto opened = sealer_.open(name, **sealed);
  if (!opened) co_return opened.error();
  co_return std::optional<Secret>(std::move(*opened));
}

asio::awaitable<Result<void>> SealedTokenStash::save(std::string name, Secret content) {
  auto sealed = sealer_.seal(name, content.expose());
  if (!sealed) co_return sealed.error();
  co_return co_await store_.write_sealed(std::move(name), std::move(*sealed));
}

std::string SealedTokenStash::where(std::string_view name) const {
  return fmt::format("{} in the ledger (sealed)", name);
}

}  // namespace nicsync::app
