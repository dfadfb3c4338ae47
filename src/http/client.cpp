// libcurl multi driven by Asio. Rules (STYLE.md): one multi handle owned by the loop thread;
// every descriptor libcurl names is watched, never owned; libcurl is never re-entered from its
// own callbacks; completions are posted to the caller's executor.
#include "nicsync/http/client.hpp"

#include <poll.h>

#include <cstring>
#include <unordered_map>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include "nicsync/core/build_info.hpp"
#include "nicsync/core/secret.hpp"
#include "nicsync/core/text.hpp"

namespace nicsync::http {
namespace asio = boost::asio;

namespace {

struct CurlGlobal {
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
};

void ensure_curl_global() {
  static CurlGlobal global;
  (void)global;
}

// Type-erased completion handler. (Boost 1.81's any_completion_handler re-wraps itself when
// passed through post/append, so we keep the concrete handler and post to its executor.)
class Completion {
 public:
  virtual ~Completion() = default;
  virtual asio::cancellation_slot slot() noexcept = 0;
  /// Posts the result to the handler's associated executor (never runs it inline).
  virtual void post(const asio::any_io_executor& fallback, Result<Response> result) = 0;
};

template <class H>
class CompletionOf final : public Completion {
 public:
  explicit CompletionOf(H h) : handler_(std::move(h)) {}
  asio::cancellation_slot slot() noexcept override { return asio::get_associated_cancellation_slot(handler_); }
  void post(const asio::any_io_executor& fallback, Result<Response> result) override {
    auto ex = asio::get_associated_executor(handler_, fallback);
    asio::post(ex, [h = std::move(handler_), r = std::move(result)]() mutable { std::move(h)(std::move(r)); });
  }

 private:
  H handler_;
};

using Handler = std::unique_ptr<Completion>;

bool has_crlf(std::string_view s) noexcept { return s.find_first_of("\r\n") != std::string_view::npos; }

}  // namespace

std::optional<std::chrono::milliseconds> Response::retry_after() const {
  if (auto v = header("Retry-After")) return parse_retry_after(*v);
  return std::nullopt;
}

/// One in-flight request.
struct Transfer {
  std::uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  curl_slist* connect_to = nullptr;
  Request request;
  Response response;
  std::size_t cap = 0;
  bool too_large = false;
  bool plain = false;  ///< a GET without body or connect-to: its handle needs no reset afterwards
  Handler handler;
  asio::cancellation_slot slot;
  char error_buf[CURL_ERROR_SIZE] = {};
};

/// A descriptor libcurl asked us to watch. Released (never closed) on CURL_POLL_REMOVE.
struct SocketState {
  SocketState(const asio::any_io_executor& ex, curl_socket_t s) : descriptor(ex), fd(s) {}
  asio::posix::stream_descriptor descriptor;
  curl_socket_t fd;
  int what = 0;
  bool read_waiting = false;
  bool write_waiting = false;
  bool removed = false;
};

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
  Impl(asio::any_io_executor executor, ClientOptions opts)
      : ex(std::move(executor)), options(std::move(opts)), timer(ex) {
    ensure_curl_global();
    if (options.user_agent.empty()) options.user_agent = std::string("nicsync/") + build_info::kVersion;
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
    check(curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket));
    check(curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this));
    check(curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer));
    check(curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this));
    check(curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections));
    check(curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, options.max_total_connections));
    const long keep = std::max<long>({options.max_host_connections, options.max_total_connections, 16});
    check(curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, keep));
  }

  ~Impl() { cleanup(); }

  static void check(CURLMcode rc) {
    if (rc != CURLM_OK) throw std::runtime_error(std::string("curl_multi_setopt: ") + curl_multi_strerror(rc));
  }

  // --- requests ------------------------------------------------------------------------

  void start(Request req, Handler handler) {
    ++stats.requests_started;
    if (shut) {
      complete_now(std::move(handler), Error(Errc::http_client_shutdown, "HTTP client is shutting down"));
      return;
    }
    for (const auto& h : req.headers) {
      if (h.name.empty() || has_crlf(h.name) || has_crlf(h.value) || h.name.find(':') != std::string::npos) {
        complete_now(std::move(handler), Error(Errc::invalid_argument, "invalid HTTP header name or value"));
        return;
      }
    }
    if (has_crlf(req.method) || req.method.empty()) {
      complete_now(std::move(handler), Error(Errc::invalid_argument, "invalid HTTP method"));
      return;
    }
    auto owned = std::make_unique<Transfer>();
    Transfer* t = owned.get();
    t->id = ++next_id;
    t->request = std::move(req);
    t->handler = std::move(handler);
    t->cap = t->request.max_response_bytes.value_or(options.max_response_bytes);
    std::optional<Error> no_handle;
    t->easy = take_easy(no_handle);
    if (t->easy == nullptr) {
      complete_now(std::move(t->handler), std::move(*no_handle));
      return;
    }
    if (auto err = configure(*t)) {
      release_transfer_handles(*t);
      complete_now(std::move(t->handler), std::move(*err));
      return;
    }
    transfers.emplace(t->id, std::move(owned));
    if (CURLMcode rc = curl_multi_add_handle(multi, t->easy); rc != CURLM_OK) {
      auto node = transfers.extract(t->id);
      release_transfer_handles(*t);
      complete_now(std::move(t->handler),
                   Error(Errc::internal, std::string("curl_multi_add_handle: ") + curl_multi_strerror(rc)));
      return;
    }
    ++stats.in_flight;
    t->slot = t->handler->slot();
    if (t->slot.is_connected()) {
      // Runs inside the signal's emit(): only post, so that finishing (which clears this
      // slot) never destroys the handler while it runs.
      t->slot.assign([weak = weak_from_this(), id = t->id](asio::cancellation_type type) {
        if (type == asio::cancellation_type::none) return;
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->ex, [weak, id] {
          if (auto s = weak.lock()) s->abort(id, Error(Errc::cancelled, "request cancelled"));
        });
      });
    }
  }

  // An easy handle keeps the options that are the same for every request of this client
  // (set once, when the handle is made or after a reset); each request sets only its own.
  // Setting them all again, after a curl_easy_reset, was a tenth of the cost of a request.
  std::optional<Error> configure_constant(CURL* e) {
    auto fail = [&](CURLcode rc, const char* what) -> std::optional<Error> {
      if (rc == CURLE_OK) return std::nullopt;
      return Error(Errc::internal, fmt::format("cannot set {} on an HTTP handle: {}", what, curl_easy_strerror(rc)));
    };
#define NICSYNC_SETOPT(opt, value) \
  if (auto err = fail(curl_easy_setopt(e, opt, value), #opt)) return err
    NICSYNC_SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    NICSYNC_SETOPT(CURLOPT_NOSIGNAL, 1L);
    NICSYNC_SETOPT(CURLOPT_WRITEFUNCTION, &Impl::on_write);
    NICSYNC_SETOPT(CURLOPT_HEADERFUNCTION, &Impl::on_header);
    NICSYNC_SETOPT(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    NICSYNC_SETOPT(CURLOPT_USERAGENT, options.user_agent.c_str());
    NICSYNC_SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    NICSYNC_SETOPT(CURLOPT_TCP_NODELAY, 1L);
    NICSYNC_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    NICSYNC_SETOPT(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    const TlsOptions& tls = options.tls;
    if (!tls.ca_file.empty()) NICSYNC_SETOPT(CURLOPT_CAINFO, tls.ca_file.c_str());
    if (!tls.ca_path.empty()) NICSYNC_SETOPT(CURLOPT_CAPATH, tls.ca_path.c_str());
    if (!tls.client_cert.empty()) NICSYNC_SETOPT(CURLOPT_SSLCERT, tls.client_cert.c_str());
    if (!tls.client_key.empty()) NICSYNC_SETOPT(CURLOPT_SSLKEY, tls.client_key.c_str());
    NICSYNC_SETOPT(CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    NICSYNC_SETOPT(CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
#undef NICSYNC_SETOPT
    return std::nullopt;
  }

  // The options of one request. Every option set here is set by every request, except those
  // of a request that is not a plain GET (body, other methods, connect-to): such a handle is
  // reset before it serves again (`Transfer::plain`).
  std::optional<Error> configure(Transfer& t) {
    CURL* e = t.easy;
    const Request& r = t.request;
    auto fail = [&](CURLcode rc, const char* what) -> std::optional<Error> {
      if (rc == CURLE_OK) return std::nullopt;
      return Error(rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ? Errc::http_bad_url : Errc::internal,
                   fmt::format("cannot set {} for {}: {}", what, redact_url(r.url), curl_easy_strerror(rc)));
    };
#define NICSYNC_SETOPT(opt, value) \
  if (auto err = fail(curl_easy_setopt(e, opt, value), #opt)) return err
    t.plain = false;  // until every option below is set
    NICSYNC_SETOPT(CURLOPT_PRIVATE, static_cast<void*>(&t));
    NICSYNC_SETOPT(CURLOPT_URL, r.url.c_str());
    NICSYNC_SETOPT(CURLOPT_ERRORBUFFER, t.error_buf);
    NICSYNC_SETOPT(CURLOPT_WRITEDATA, static_cast<void*>(&t));
    NICSYNC_SETOPT(CURLOPT_HEADERDATA, static_cast<void*>(&t));
    NICSYNC_SETOPT(CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.value_or(options.timeout).count()));
    NICSYNC_SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(r.connect_timeout.value_or(options.connect_timeout).count()));

    if (r.method == "GET") {
      NICSYNC_SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      NICSYNC_SETOPT(CURLOPT_NOBODY, 1L);
    } else {
      if (r.method != "POST") NICSYNC_SETOPT(CURLOPT_CUSTOMREQUEST, r.method.c_str());
      if (r.method == "POST" || !r.body.empty()) {
        NICSYNC_SETOPT(CURLOPT_POSTFIELDS, r.body.data());
        NICSYNC_SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      }
    }
    if (!r.body.empty() && r.method == "GET") {
      return Error(Errc::invalid_argument, "a GET request cannot carry a body");
    }

    // Never wait for 100-continue; add the caller's headers.
    t.header_list = curl_slist_append(t.header_list, "Expect:");
    bool has_content_type = false;
    for (const auto& h : r.headers) {
      if (iequals(h.name, "Content-Type")) has_content_type = true;
      std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
      curl_slist* next = curl_slist_append(t.header_list, line.c_str());
      secure_wipe(line);  // header values may be tokens
      if (next == nullptr) return Error(Errc::internal, "out of memory building headers");
      t.header_list = next;
    }
    // curl would otherwise label every body as a form.
    if (!has_content_type && !r.body.empty()) t.header_list = curl_slist_append(t.header_list, "Content-Type:");
    NICSYNC_SETOPT(CURLOPT_HTTPHEADER, t.header_list);
    if (!r.connect_to.empty()) {
      t.connect_to = curl_slist_append(nullptr, r.connect_to.c_str());
      NICSYNC_SETOPT(CURLOPT_CONNECT_TO, t.connect_to);
    }
#undef NICSYNC_SETOPT
    t.plain = r.method == "GET" && r.body.empty() && r.connect_to.empty();
    return std::nullopt;
  }

  void abort(std::uint64_t id, Error error) {
    auto it = transfers.find(id);
    if (it == transfers.end()) return;
    curl_multi_remove_handle(multi, it->second->easy);
    count_connections(it->second->easy);
    finish(std::move(it->second), std::move(error));
    transfers.erase(it);
  }

  // Hands a finished transfer's result to its caller (posted, never inline).
  void finish(std::unique_ptr<Transfer> owned, Result<Response> result) {
    Transfer& t = *owned;
    --stats.in_flight;
    if (t.slot.is_connected()) t.slot.clear();
    if (t.request.sensitive) {
      secure_wipe(t.request.body);
      for (auto& h : t.request.headers) secure_wipe(h.value);  // tokens travel in headers
    }
    release_transfer_handles(t);
    complete_now(std::move(t.handler), std::move(result));
  }

  void complete_now(Handler handler, Result<Response> result) {
    ++stats.requests_completed;
    handler->post(ex, std::move(result));
  }

  void release_transfer_handles(Transfer& t) {
    if (t.easy != nullptr) {
      give_back_easy(t.easy, t.plain);
      t.easy = nullptr;
    }
    curl_slist_free_all(t.header_list);
    t.header_list = nullptr;
    curl_slist_free_all(t.connect_to);
    t.connect_to = nullptr;
  }

  // A handle with the constant options set, or nullptr (with `error` set).
  CURL* take_easy(std::optional<Error>& error) {
    if (!idle_easies.empty()) {
      CURL* e = idle_easies.back();
      idle_easies.pop_back();
      return e;
    }
    CURL* e = curl_easy_init();
    if (e == nullptr) {
      error = Error(Errc::internal, "curl_easy_init failed");
      return nullptr;
    }
    if ((error = configure_constant(e))) {
      curl_easy_cleanup(e);
      return nullptr;
    }
    return e;
  }

  void free_idle_easies() {
    for (CURL* e : idle_easies) curl_easy_cleanup(e);
    idle_easies.clear();
    idle_easies.shrink_to_fit();
  }

  // Connections live in the multi handle's cache, not in the easy handle. A handle that served
  // a plain GET keeps its constant options; it only forgets the pointers into the finished
  // transfer. Any other is reset and set up again.
  void give_back_easy(CURL* e, bool plain) {
    if (shut || idle_easies.size() >= 256) {
      curl_easy_cleanup(e);
      return;
    }
    if (plain) {
      curl_easy_setopt(e, CURLOPT_PRIVATE, static_cast<void*>(nullptr));
      curl_easy_setopt(e, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
      curl_easy_setopt(e, CURLOPT_WRITEDATA, static_cast<void*>(nullptr));
      curl_easy_setopt(e, CURLOPT_HEADERDATA, static_cast<void*>(nullptr));
      curl_easy_setopt(e, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    } else {
      curl_easy_reset(e);
      if (configure_constant(e)) {
        curl_easy_cleanup(e);
        return;
      }
    }
    idle_easies.push_back(e);
  }

  // --- driving libcurl -------------------------------------------------------------------

  void socket_action(curl_socket_t fd, int mask) {
    if (shut) return;
    int running = 0;
    curl_multi_socket_action(multi, fd, mask, &running);
    collect_done();
    if (!wanted && armed && transfers.empty()) {
      armed.reset();
      timer.cancel();
    }
  }

  void collect_done() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      void* priv = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
      auto* t = static_cast<Transfer*>(priv);
      auto it = t != nullptr ? transfers.find(t->id) : transfers.end();
      curl_multi_remove_handle(multi, easy);
      if (it == transfers.end()) continue;  // not ours any more (cannot happen)
      count_connections(easy);
      auto owned = std::move(it->second);
      transfers.erase(it);
      if (code == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        owned->response.status = static_cast<int>(status);
        Response response = std::move(owned->response);
        finish(std::move(owned), std::move(response));
      } else {
        Error err = map_error(*owned, code);
        finish(std::move(owned), std::move(err));
      }
    }
  }

  void count_connections(CURL* easy) {
    long connects = 0;
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
    stats.connections_opened += static_cast<std::uint64_t>(connects);
  }

  Error map_error(Transfer& t, CURLcode code) {
    const std::string where = fmt::format("{} {}", t.request.method, redact_url(t.request.url));
    const std::string detail = t.error_buf[0] != '\0' ? std::string(t.error_buf) : curl_easy_strerror(code);
    auto make = [&](Errc e) { return Error(e, fmt::format("{}: {}", where, detail)); };
    switch (code) {
      case CURLE_OPERATION_TIMEDOUT: {
        // A reused keep-alive connection reports a connect time of 0 too; only a transfer that
        // never got as far as sending the request timed out while connecting.
        curl_off_t connect_us = 0;
        curl_off_t pretransfer_us = 0;
        curl_easy_getinfo(t.easy, CURLINFO_CONNECT_TIME_T, &connect_us);
        curl_easy_getinfo(t.easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
        return make(connect_us == 0 && pretransfer_us == 0 ? Errc::http_connect_timeout : Errc::http_timeout);
      }
      case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        curl_easy_getinfo(t.easy, CURLINFO_OS_ERRNO, &os_errno);
        return make(os_errno == ECONNREFUSED ? Errc::http_connection_refused : Errc::http_network);
      }
      case CURLE_COULDNT_RESOLVE_HOST: return make(Errc::http_resolve_failed);
      case CURLE_COULDNT_RESOLVE_PROXY: return make(Errc::http_proxy);
      case CURLE_PEER_FAILED_VERIFICATION: return make(Errc::http_tls_verify);
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_ENGINE_NOTFOUND:
      case CURLE_SSL_ENGINE_SETFAILED:
      case CURLE_SSL_ENGINE_INITFAILED:
      case CURLE_SSL_SHUTDOWN_FAILED:
      case CURLE_SSL_CRL_BADFILE:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      case CURLE_SSL_INVALIDCERTSTATUS:
      case CURLE_USE_SSL_FAILED: return make(Errc::http_tls);
      case CURLE_WRITE_ERROR:
        if (t.too_large) {
          return Error(Errc::http_response_too_large,
                       fmt::format("{}: response body larger than {} bytes", where, t.cap));
        }
        return make(Errc::http_network);
      case CURLE_FILESIZE_EXCEEDED: return make(Errc::http_response_too_large);
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL: return make(Errc::http_bad_url);
      case CURLE_WEIRD_SERVER_REPLY:
      case CURLE_BAD_CONTENT_ENCODING: return make(Errc::http_protocol);
      case CURLE_ABORTED_BY_CALLBACK: return make(Errc::cancelled);
      case CURLE_OUT_OF_MEMORY: return make(Errc::internal);
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
      case CURLE_GOT_NOTHING:
      case CURLE_PARTIAL_FILE:
      default: return make(Errc::http_network);
    }
  }

  // --- curl callbacks (noexcept, never call back into libcurl) -----------------------------

  static size_t on_write(char* data, size_t size, size_t n, void* userp) noexcept {
    auto* t = static_cast<Transfer*>(userp);
    const size_t bytes = size * n;
    if (t->response.body.size() + bytes > t->cap) {
      t->too_large = true;
      return 0;
    }
    try {
      t->response.body.append(data, bytes);
    } catch (...) {
      return 0;
    }
    return bytes;
  }

  static size_t on_header(char* data, size_t size, size_t n, void* userp) noexcept {
    auto* t = static_cast<Transfer*>(userp);
    const size_t bytes = size * n;
    std::string_view line(data, bytes);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    try {
      if (line.starts_with("HTTP/")) {
        t->response.headers.clear();  // a new response (after 1xx) starts
      } else if (auto colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        t->response.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
      }
    } catch (...) {
      return 0;
    }
    return bytes;
  }

  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) noexcept {
    auto* self = static_cast<Impl*>(userp);
    try {
      if (what == CURL_POLL_REMOVE) {
        self->forget_socket(fd);
        return 0;
      }
      auto& slot = self->sockets[fd];
      if (!slot) {
        slot = std::make_shared<SocketState>(self->ex, fd);
        boost::system::error_code ec;
        slot->descriptor.assign(fd, ec);
        if (ec) {
          spdlog::error("http client: cannot watch socket {}: {}", fd, ec.message());
          self->sockets.erase(fd);
          return -1;
        }
      }
      slot->what = what;
      self->arm(slot);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  // libcurl moves its timeout on almost every call; re-arming the Asio timer each time costs a
  // timerfd_settime syscall. So the timer is lazy: it is re-armed only when curl's deadline moves
  // earlier; a timer that fires before the current deadline quietly re-arms itself; a cancelled
  // deadline lets the armed timer fire into nothing. A zero timeout is posted, not timed. In every
  // case libcurl is called from the loop, never from inside its own callback.
  static int on_timer(CURLM*, long timeout_ms, void* userp) noexcept {
    auto* self = static_cast<Impl*>(userp);
    try {
      if (timeout_ms < 0) {
        self->wanted.reset();
        // Idle: do not leave a timer behind that would keep the loop busy for nothing.
        if (self->armed && self->transfers.empty()) {
          self->armed.reset();
          self->timer.cancel();
        }
        return 0;
      }
      if (timeout_ms == 0) {
        self->wanted.reset();
        if (!self->zero_posted) {
          self->zero_posted = true;
          asio::post(self->ex, [weak = self->weak_from_this()] {
            if (auto s = weak.lock()) {
              s->zero_posted = false;
              s->socket_action(CURL_SOCKET_TIMEOUT, 0);
            }
          });
        }
        return 0;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      self->wanted = deadline;
      if (!self->armed || deadline < *self->armed) self->arm_timer(deadline);
      return 0;
    } catch (...) {
      return -1;
    }
  }

  void arm_timer(std::chrono::steady_clock::time_point deadline) {
    armed = deadline;
    timer.expires_at(deadline);
    timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;  // superseded by an earlier deadline, or shut down
      auto s = weak.lock();
      if (!s || s->shut) return;
      s->armed.reset();
      if (!s->wanted) return;
      if (std::chrono::steady_clock::now() < *s->wanted) {
        s->arm_timer(*s->wanted);
        return;
      }
      s->wanted.reset();
      s->socket_action(CURL_SOCKET_TIMEOUT, 0);
    });
  }

  void forget_socket(curl_socket_t fd) {
    auto it = sockets.find(fd);
    if (it == sockets.end()) return;
    it->second->removed = true;
    boost::system::error_code ignored;
    it->second->descriptor.cancel(ignored);
    (void)it->second->descriptor.release();  // libcurl owns and closes the descriptor
    sockets.erase(it);
  }

  // Waits for the directions libcurl asked for. Asio's epoll reactor is edge-triggered and
  // libcurl expects level-triggered readiness (it may leave data unread), so each wait is
  // preceded by a zero-timeout poll: a descriptor that is ready now is acted on at once.
  void arm(const std::shared_ptr<SocketState>& s) {
    const bool want_read = (s->what & CURL_POLL_IN) != 0;
    const bool want_write = (s->what & CURL_POLL_OUT) != 0;
    short ready = 0;
    if ((want_read && !s->read_waiting) || (want_write && !s->write_waiting)) {
      pollfd p{s->fd, static_cast<short>((want_read ? POLLIN : 0) | (want_write ? POLLOUT : 0)), 0};
      if (::poll(&p, 1, 0) > 0) ready = p.revents;
    }
    if (want_read && !s->read_waiting) wait(s, true, (ready & (POLLIN | POLLERR | POLLHUP)) != 0);
    if (want_write && !s->write_waiting) wait(s, false, (ready & (POLLOUT | POLLERR | POLLHUP)) != 0);
  }

  void wait(const std::shared_ptr<SocketState>& s, bool read, bool ready_now) {
    (read ? s->read_waiting : s->write_waiting) = true;
    auto on_ready = [weak = weak_from_this(), s, read](boost::system::error_code ec) {
      (read ? s->read_waiting : s->write_waiting) = false;
      if (ec || s->removed) return;
      auto self = weak.lock();
      if (!self || self->shut) return;
      const int bit = read ? CURL_POLL_IN : CURL_POLL_OUT;
      if ((s->what & bit) == 0) return;  // libcurl lost interest meanwhile
      self->socket_action(s->fd, read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
      if (!s->removed) self->arm(s);
    };
    if (ready_now) {
      asio::post(ex, [on_ready = std::move(on_ready)]() mutable { on_ready(boost::system::error_code{}); });
    } else {
      s->descriptor.async_wait(
          read ? asio::posix::descriptor_base::wait_read : asio::posix::descriptor_base::wait_write,
          std::move(on_ready));
    }
  }

  // --- shutdown ----------------------------------------------------------------------------

  void shutdown() {
    if (shut) return;
    shut = true;
    // 1. Remove every easy handle and fail its request.
    while (!transfers.empty()) {
      auto it = transfers.begin();
      curl_multi_remove_handle(multi, it->second->easy);
      auto owned = std::move(it->second);
      transfers.erase(it);
      finish(std::move(owned), Error(Errc::http_client_shutdown, "HTTP client shut down before the response"));
    }
    cleanup();
  }

  void cleanup() {
    shut = true;
    // 2. curl_multi_cleanup may still call the socket callback; our state must be alive.
    if (multi != nullptr) {
      curl_multi_cleanup(multi);
      multi = nullptr;
    }
    free_idle_easies();
    // 3. Then timers and socket states.
    timer.cancel();
    for (auto& [fd, s] : sockets) {
      s->removed = true;
      boost::system::error_code ignored;
      s->descriptor.cancel(ignored);
      (void)s->descriptor.release();
    }
    sockets.clear();
  }

  asio::any_io_executor ex;
  ClientOptions options;
  CURLM* multi = nullptr;
  asio::steady_timer timer;
  std::unordered_map<std::uint64_t, std::unique_ptr<Transfer>> transfers;
  std::uint64_t next_id = 0;
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketState>> sockets;
  std::vector<CURL*> idle_easies;
  ClientStats stats;
  bool shut = false;
  std::optional<std::chrono::steady_clock::time_point> wanted;  // libcurl's current deadline
  std::optional<std::chrono::steady_clock::time_point> armed;   // what the Asio timer is set to
  bool zero_posted = false;
};

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

Client::~Client() {
  if (impl_) impl_->shutdown();
}

namespace {
// A named initiation (not a lambda in a co_await expression: g++ 12 destroys such
// temporaries twice).
struct InitiateRequest {
  std::shared_ptr<Client::Impl> impl;
  template <class H>
  void operator()(H handler, Request r) const {
    impl->start(std::move(r), std::make_unique<CompletionOf<H>>(std::move(handler)));
  }
};
}  // namespace

asio::awaitable<Result<Response>> Client::request(Request request) {
  // Not a coroutine itself: returns the awaitable that starts the transfer when awaited.
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<Response>)>(
      InitiateRequest{impl_}, asio::use_awaitable, std::move(request));
}

void Client::shutdown() { impl_->shutdown(); }

void Client::release_idle_handles() { impl_->free_idle_easies(); }

std::size_t Client::idle_handles() const noexcept { return impl_->idle_easies.size(); }

ClientStats Client::stats() const noexcept {
  ClientStats s = impl_->stats;
  s.in_flight = impl_->transfers.size();
  return s;
}

const ClientOptions& Client::options() const noexcept { return impl_->options; }

}  // namespace nicsync::http
