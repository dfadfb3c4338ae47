#pragma once
// A Vault node of the chaos suite's own on the daemon's audit feed ([watch.audit]): it writes
// the response entry of each rotation as a node with a socket audit device does, and the feed's
// faults: a connection dropped mid-entry, garbage lines, entries written twice, entries out of
// order, entries for paths nothing watches. Like Vault it writes blocking, with a write timeout,
// and on a failed write dials again and writes the entry once more; an entry that still fails
// is lost (the daemon's polls and resyncs must make up for it).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "nicsync/watch/audit_listener.hpp"

namespace nicsync::chaos {

class AuditInjector {
 public:
  AuditInjector(std::uint16_t port, std::uint64_t seed);
  ~AuditInjector();
  AuditInjector(const AuditInjector&) = delete;
  AuditInjector& operator=(const AuditInjector&) = delete;

  /// The response entry of a KV v2 write of secret/nic/<gstin> (version `version`), with the
  /// password in its request data as a device with log_raw writes it: nothing of it may ever
  /// show up in the daemon's log, ledger or API.
  void rotation(const std::string& gstin, std::int64_t version, const std::string& password);

  // --- faults ---
  /// Half of an entry, then the connection closes; the next entry dials again.
  void drop_connection_mid_entry();
  /// `n` lines that are no entries; variant 3 adds one longer than the daemon reads (4 MiB).
  void garbage(int n, int variant);
  /// The next `n` rotations' entries are written twice, the second time on a new connection
  /// every other time (as two nodes, or a write repeated after a timeout).
  void duplicate_next(int n);
  /// The next `n` rotations' entries are held back and written in reverse order.
  void reorder_next(int n);
  /// `n` entries of writes to paths nothing watches: other folders and mounts, KV v1, sys/,
  /// auth/, a failed write, request entries.
  void unknown_paths(int n);
  /// Writes whatever is held back.
  void flush();

  [[nodiscard]] int lines() const noexcept { return lines_; }
  [[nodiscard]] int garbage_lines() const noexcept { return garbage_; }
  [[nodiscard]] int lost() const noexcept { return lost_; }
  [[nodiscard]] int dials() const noexcept { return dials_; }

 private:
  std::string entry(const std::string& path, const std::string& operation, const std::string& type,
                    const std::string& data_value, std::int64_t version, const std::string& error = {});
  /// One write as Vault makes it: on failure close, dial, write once more.
  bool send(const std::string& bytes);
  bool write_all(const std::string& bytes);
  bool dial();
  void close();

  std::uint16_t port_;
  std::mt19937_64 rng_;
  int fd_ = -1;
  int duplicate_ = 0;
  int reorder_ = 0;
  std::vector<std::string> held_;
  int lines_ = 0, garbage_ = 0, lost_ = 0, dials_ = 0;
};

/// A second audit device for the test Vault that reads everything and keeps nothing (as the file
/// device a site keeps beside nicsyncd), so that Vault fails no request while nicsyncd restarts.
class SpareAuditDevice {
 public:
  SpareAuditDevice() : listener_(watch::AuditListener::start({.listen = "127.0.0.1:0"}, feed_).value()) {}
  [[nodiscard]] std::string address() const { return listener_->local_address(); }

 private:
  boost::asio::io_context io_;  // never run: the entries go nowhere
  std::shared_ptr<watch::AuditFeed> feed_ = watch::AuditFeed::create(io_.get_executor());
  std::unique_ptr<watch::AuditListener> listener_;
};

/// Rotations whose audit entry comes before their version can be read (a standby behind the
/// node that took the write): the entry is written at once, the version to Vault `lag` later.
/// A key's versions still reach Vault in order.
class LaggingWrites {
 public:
  using Put = std::function<void(int gstin, std::int64_t version, const std::string& password)>;
  explicit LaggingWrites(Put put) : put_(std::move(put)) {}

  /// The next `rotations` rotations lag by `lag`.
  void start(int rotations, std::chrono::milliseconds lag) {
    left_ = rotations;
    lag_ = lag;
  }
  /// Whether the next rotation lags (then `hold` it).
  bool take() { return left_ > 0 && left_-- > 0; }
  void hold(int gstin, std::int64_t version, std::string password) {
    held_[gstin].push_back({std::chrono::steady_clock::now() + lag_, version, std::move(password)});
  }
  /// Writes what is due (of GSTIN `only`, or of all; everything with `all`).
  void put(int only = -1, bool all = false) {
    for (auto& [gstin, queue] : held_) {
      while (!queue.empty() && (only < 0 || gstin == only) &&
             (all || queue.front().due <= std::chrono::steady_clock::now())) {
        put_(gstin, queue.front().version, queue.front().password);
        queue.pop_front();
      }
    }
  }
  /// No more lagging: everything held is written now.
  void stop() {
    left_ = 0;
    put(-1, true);
  }

 private:
  struct Held {
    std::chrono::steady_clock::time_point due;
    std::int64_t version = 0;
    std::string password;
  };
  Put put_;
  std::map<int, std::deque<Held>> held_;
  int left_ = 0;
  std::chrono::milliseconds lag_{0};
};

}  // namespace nicsync::chaos
