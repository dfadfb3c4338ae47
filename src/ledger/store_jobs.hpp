#pragma once
// What the stores with a writer thread share: an operation as a job in a queue, and its
// completion, posted to the executor of the coroutine that asked (never run on the writer
// thread). Boost 1.81's any_completion_handler re-wraps itself through post: not used.

#include <cstdint>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/post.hpp>

#include "nicsync/ledger/store.hpp"

namespace nicsync::ledger::detail {

template <class R>
class Completion {
 public:
  virtual ~Completion() = default;
  virtual void post(R result) = 0;
};

template <class R, class H>
class CompletionOf final : public Completion<R> {
 public:
  explicit CompletionOf(H h) : handler_(std::move(h)) {}
  void post(R result) override {
    auto ex = boost::asio::get_associated_executor(handler_);
    boost::asio::post(ex, [h = std::move(handler_), r = std::move(result)]() mutable { std::move(h)(std::move(r)); });
  }

 private:
  H handler_;
};

template <class R>
using Done = std::unique_ptr<Completion<R>>;

template <class R, class H>
Done<R> make_done(H handler) {
  return std::make_unique<CompletionOf<R, H>>(std::move(handler));
}

/// Completes once: the pointer is null afterwards, so a job is never answered twice.
template <class R>
void finish(Done<R>& done, R result) {
  if (done) std::exchange(done, nullptr)->post(std::move(result));
}

struct WriteJob {
  PairRecord record;
  std::optional<HistoryEntry> history;
  Done<Result<void>> done;
};
struct RemoveJob {
  std::string destination;
  std::string gstin;
  Done<Result<void>> done;
};
struct TrimJob {
  std::int64_t cutoff_ns = 0;
  std::size_t removed = 0;  // by earlier chunks
  bool more = false;        // the last chunk was full: there may be more to delete
  Done<Result<std::size_t>> done;
};
struct HistoryJob {
  std::string gstin;
  std::size_t limit = 0;
  Done<Result<std::vector<HistoryEntry>>> done;
};
/// Every pair record: for start-up (blocking, through `promise`) or for a replica that follows
/// the ledger while it stands by (`done`, completing on the caller's executor).
struct LoadJob {
  std::promise<Result<std::vector<PairRecord>>> promise;
  Done<Result<std::vector<PairRecord>>> done;
  bool answered = false;
};
struct AppendHistoryJob {
  HistoryEntry entry;
  Done<Result<void>> done;
};
struct SealedWriteJob {
  std::string name;
  std::string sealed;
  Done<Result<void>> done;
};
struct SealedReadJob {
  std::string name;
  Done<Result<std::optional<std::string>>> done;
};
using Job =
    std::variant<WriteJob, RemoveJob, TrimJob, HistoryJob, LoadJob, SealedWriteJob, SealedReadJob, AppendHistoryJob>;

/// Jobs that change the ledger (committed in the batch's transaction); the rest read.
inline bool is_mutation(const Job& j) noexcept {
  return std::holds_alternative<WriteJob>(j) || std::holds_alternative<RemoveJob>(j) ||
         std::holds_alternative<TrimJob>(j) || std::holds_alternative<SealedWriteJob>(j) ||
         std::holds_alternative<AppendHistoryJob>(j);
}

/// A mutation that completes with `Result<void>` once committed (not a trim, which counts).
inline bool is_plain_mutation(const Job& j) noexcept {
  return std::holds_alternative<WriteJob>(j) || std::holds_alternative<RemoveJob>(j) ||
         std::holds_alternative<SealedWriteJob>(j) || std::holds_alternative<AppendHistoryJob>(j);
}

/// Answers a load once, whichever way it was asked.
inline void answer(LoadJob& job, Result<std::vector<PairRecord>> result) {
  if (job.answered) return;
  job.answered = true;
  if (job.done) {
    finish(job.done, std::move(result));
  } else {
    job.promise.set_value(std::move(result));
  }
}

/// Answers a job that did not run with `error`.
inline void fail(Job& job, const Error& error) {
  std::visit(
      [&](auto& j) {
        using J = std::decay_t<decltype(j)>;
        if constexpr (std::is_same_v<J, LoadJob>) {
          answer(j, error);
        } else if constexpr (std::is_same_v<J, WriteJob> || std::is_same_v<J, RemoveJob> ||
                             std::is_same_v<J, SealedWriteJob> || std::is_same_v<J, AppendHistoryJob>) {
          finish(j.done, Result<void>(error));
        } else if constexpr (std::is_same_v<J, TrimJob>) {
          finish(j.done, Result<std::size_t>(error));
        } else if constexpr (std::is_same_v<J, SealedReadJob>) {
          finish(j.done, Result<std::optional<std::string>>(error));
        } else {
          finish(j.done, Result<std::vector<HistoryEntry>>(error));
        }
      },
      job);
}

/// Answers a plain mutation that committed.
inline void succeed(Job& job) {
  std::visit(
      [](auto& j) {
        using J = std::decay_t<decltype(j)>;
        if constexpr (std::is_same_v<J, WriteJob> || std::is_same_v<J, RemoveJob> ||
                      std::is_same_v<J, SealedWriteJob> || std::is_same_v<J, AppendHistoryJob>) {
          finish(j.done, Result<void>());
        }
      },
      job);
}

// Named initiations for async_initiate, one per operation, over any store whose `Impl` has
// `submit(Job)` (not lambdas inside co_await expressions: g++ 12 destroys those twice).

template <class Impl>
struct InitiateWrite {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, PairRecord record, std::optional<HistoryEntry> history) const {
    impl->submit(WriteJob{std::move(record), std::move(history), make_done<Result<void>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateRemove {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, std::string destination, std::string gstin) const {
    impl->submit(RemoveJob{std::move(destination), std::move(gstin), make_done<Result<void>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateHistory {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, std::string gstin, std::size_t limit) const {
    impl->submit(HistoryJob{std::move(gstin), limit, make_done<Result<std::vector<HistoryEntry>>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateLoad {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler) const {
    LoadJob job;
    job.done = make_done<Result<std::vector<PairRecord>>>(std::move(handler));
    impl->submit(std::move(job));
  }
};

template <class Impl>
struct InitiateTrim {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, std::int64_t cutoff_ns) const {
    impl->submit(TrimJob{cutoff_ns, 0, false, make_done<Result<std::size_t>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateWriteSealed {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, std::string name, std::string sealed) const {
    impl->submit(SealedWriteJob{std::move(name), std::move(sealed), make_done<Result<void>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateAppendHistory {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, HistoryEntry entry) const {
    impl->submit(AppendHistoryJob{std::move(entry), make_done<Result<void>>(std::move(handler))});
  }
};

template <class Impl>
struct InitiateReadSealed {
  std::shared_ptr<Impl> impl;
  template <class H>
  void operator()(H handler, std::string name) const {
    impl->submit(SealedReadJob{std::move(name), make_done<Result<std::optional<std::string>>>(std::move(handler))});
  }
};

}  // namespace nicsync::ledger::detail
