#pragma once
// Headless Chromium for tests, driven through the DevTools protocol: the browser as a child
// process (its own temporary profile, no sandbox, nothing fetched from the network), one
// websocket to it, and pages as flat sessions of that connection. Every wait has a deadline;
// events are waited for, never slept on. Beast stays in devtools.cpp.

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "testing/process.hpp"
#include "testing/temp_dir.hpp"

namespace nicsync::testing {

/// Where Debian's chromium is (NICSYNC_CHROMIUM overrides); empty when it is not installed.
std::string find_chromium();

class Browser {
 public:
  /// Starts chromium headless on a free DevTools port and connects to it. Throws with the
  /// browser's output when it does not come up within `timeout`.
  explicit Browser(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  /// A new tab; its id is the session to give `call` and `wait_event`.
  std::string open_tab(int width = 1280, int height = 900);
  /// Sends one command and waits for its answer; throws on a protocol error or the deadline.
  boost::json::object call(const std::string& method, boost::json::object params = {}, const std::string& session = {},
                           std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Waits for an event of `method` on `session` (those already received count, oldest first).
  boost::json::object wait_event(const std::string& method, const std::string& session,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// Forgets the events received so far.
  void clear_events();

  /// Loads `url` in the tab and waits for its load event.
  void navigate(const std::string& session, const std::string& url);
  /// Evaluates `expression` in the tab (awaiting a promise it returns); the value as JSON.
  boost::json::value eval(const std::string& session, const std::string& expression,
                          std::chrono::milliseconds timeout = std::chrono::seconds(15));
  /// A PNG of the tab, written to `path`.
  void screenshot(const std::string& session, const std::string& path);

  [[nodiscard]] std::string output() const { return process_ ? process_->output() : std::string(); }

  struct Connection;

 private:
  TempDir profile_;
  std::unique_ptr<Process> process_;
  std::unique_ptr<Connection> connection_;
  std::deque<boost::json::object> events_;
  long next_id_ = 1;
};

}  // namespace nicsync::testing
