#pragma once
// Scripted collaborators of the sync engine for tests and benchmarks: a Vault reader holding
// credentials per (path, version) and a destination that records pushes, checks that the
// engine's intent was durable first, and answers from a script (optionally after a delay).

#include <deque>
#include <map>
#include <set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "nicsync/sync/engine.hpp"
#include "testing/memory_store.hpp"

namespace nicsync::testing {

using namespace std::chrono_literals;

inline std::string path_of(const Gstin& g) { return "secret/nic/" + g.str(); }

/// A fingerprint for tests that need no key: SHA-256 of the length-prefixed username and
/// password (unkeyed, so only for values planted by the test).
Fingerprint test_fingerprint(std::string_view username, const Secret& password);

class FakeReader final : public sync::CredentialReader {
 public:
  void set(const Gstin& g, std::int64_t version, std::string password, std::string username = "API_USER") {
    values_[{path_of(g), version}] = destinations::Credential{std::move(username), Secret(password)};
  }
  void set_error(const Gstin& g, std::int64_t version, Error e) { errors_[{path_of(g), version}] = std::move(e); }
  void clear_errors() { errors_.clear(); }
  boost::asio::awaitable<Result<destinations::Credential>> read(sync::SourceRef source, std::int64_t version) override {
    ++reads;
    const auto key = std::make_pair(source.path, version);
    if (auto e = errors_.find(key); e != errors_.end()) co_return e->second;
    if (auto v = values_.find(key); v != values_.end()) co_return v->second;
    co_return Error(Errc::vault_not_found, "no such version in the fake");
  }
  int reads = 0;

 private:
  std::map<std::pair<std::string, std::int64_t>, destinations::Credential> values_;
  std::map<std::pair<std::string, std::int64_t>, Error> errors_;
};

class FakeDestination final : public destinations::Destination {
 public:
  FakeDestination(std::string name, boost::asio::any_io_executor ex, MemoryStore& store)
      : name_(std::move(name)), ex_(std::move(ex)), store_(store) {}

  struct Push {
    std::string gstin;
    std::int64_t version;
    std::string password;
    int attempt;
    std::string idempotency_key;
  };

  const std::string& name() const noexcept override { return name_; }
  std::string_view kind() const noexcept override { return "fake"; }
  boost::asio::awaitable<Result<void>> probe() override { co_return Result<void>{}; }
  destinations::DestinationStats stats() const override { return {}; }

  boost::asio::awaitable<Result<void>> push(destinations::Delivery d, destinations::Credential c) override {
    // The engine must have made its intent durable before anything goes out.
    const auto* rec = store_.record(name_, d.gstin.str());
    if (rec == nullptr || !rec->push_in_flight || !rec->pending || rec->pending->version.number != d.version) {
      intent_violations++;
    }
    if (!active_.insert(d.gstin.str()).second) same_pair_overlap++;
    ++concurrent;
    max_concurrent = std::max(max_concurrent, concurrent);
    max_writes_during_push = std::max(max_writes_during_push, store_.writes_in_progress());
    pushes.push_back({d.gstin.str(), d.version, std::string(c.password.expose()), d.attempt, d.idempotency_key});
    struct Leave {
      FakeDestination& f;
      std::string g;
      ~Leave() {
        --f.concurrent;
        f.active_.erase(g);
      }
    } leave{*this, d.gstin.str()};
    if (delay > 0ms) {
      boost::asio::steady_timer t(ex_, delay);
      co_await t.async_wait(boost::asio::use_awaitable);  // throws when the engine cancels us
    }
    if (!script.empty()) {
      Result<void> r = script.front();
      script.pop_front();
      co_return r;
    }
    co_return Result<void>{};
  }

  std::vector<Push> pushes;
  std::deque<Result<void>> script;
  std::chrono::milliseconds delay{0};
  int concurrent = 0;
  int max_concurrent = 0;
  int max_writes_during_push = 0;  ///< ledger writes (of other deliveries) in progress as a push went out
  int same_pair_overlap = 0;
  int intent_violations = 0;

 private:
  std::string name_;
  boost::asio::any_io_executor ex_;
  MemoryStore& store_;
  std::set<std::string> active_;
};

}  // namespace nicsync::testing
