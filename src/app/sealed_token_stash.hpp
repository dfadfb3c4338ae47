#pragma once
// A destination's token stash in a ledger shared by replicas: sealed (AES-256-GCM, ledger keys)
// before it reaches the database, so the database holds no usable token.

#include <memory>

#include "nicsync/destinations/token_stash.hpp"
#include "nicsync/ledger/keys.hpp"
#include "nicsync/ledger/store.hpp"

namespace nicsync::app {

class SealedTokenStash final : public destinations::TokenStash {
 public:
  /// `store` must outlive the stash.
  SealedTokenStash(ledger::Store& store, ledger::Sealer sealer) : store_(store), sealer_(std::move(sealer)) {}

  boost::asio::awaitable<Result<std::optional<Secret>>> load(std::string name) override;
  boost::asio::awaitable<Result<void>> save(std::string name, Secret content) override;
  [[nodiscard]] std::string where(std::string_view name) const override;

 private:
  ledger::Store& store_;
  ledger::Sealer sealer_;
};

}  // namespace nicsync::app
