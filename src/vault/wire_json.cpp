// Parsing Vault's bodies: every byte of the parsed value and of the parser's own scratch is wiped
// before it is freed (bodies carry tokens and passwords), and a small body is parsed into room on
// the stack (JsonScratch) instead of the heap.
#include <new>

#include <boost/container/pmr/memory_resource.hpp>
#include <boost/json/parser.hpp>
#include <fmt/format.h>

#include "nicsync/core/secret.hpp"
#include "vault/wire.hpp"

namespace nicsync::vault::wire {
namespace json = boost::json;

namespace {

class WipingResource final : public boost::container::pmr::memory_resource {
 private:
  // The aligned forms only for over-aligned requests (Boost.JSON asks for alignment 1 for
  // strings), and the unsized delete: clang (< 19) has no sized deallocation by default.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) return ::operator new(bytes);
    return ::operator new(bytes, std::align_val_t(alignment));
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    secure_wipe(p, bytes);
    if (alignment <= __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      ::operator delete(p);
    } else {
      ::operator delete(p, std::align_val_t(alignment));
    }
  }
  bool do_is_equal(const boost::container::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

}  // namespace

json::storage_ptr wiping_storage() noexcept {
  static WipingResource resource;
  return json::storage_ptr(&resource);
}

namespace {

Result<json::value> parse_with(json::parser& parser, std::string_view body, std::string_view what) {
  if (body.empty()) {
    return Error(Errc::vault_bad_response,
                 fmt::format("Vault's response to {} has an empty body where JSON was expected", what));
  }
  boost::system::error_code ec;
  const std::size_t used = parser.write(body.data(), body.size(), ec);
  if (ec) {
    const bool truncated = ec == json::error::incomplete || used >= body.size();
    return Error(Errc::vault_bad_response,
                 fmt::format("Vault's response to {} is {} ({} at byte {} of {}); a proxy or load balancer between "
                             "nicsync and Vault may be cutting or rewriting responses",
                             what, truncated ? "truncated JSON" : "not valid JSON", ec.message(), used, body.size()));
  }
  return parser.release();
}

json::parse_options vault_parse_options() {
  json::parse_options options;
  options.max_depth = 64;
  return options;
}

}  // namespace

Result<json::value> parse_json(std::string_view body, std::string_view what) {
  json::parser parser(wiping_storage(), vault_parse_options());
  parser.reset(wiping_storage());
  return parse_with(parser, body, what);
}

JsonScratch::JsonScratch() noexcept : resource_(values_, sizeof values_, wiping_storage()) {}

JsonScratch::~JsonScratch() {
  resource_.release();
  secure_wipe(values_, sizeof values_);
  secure_wipe(temp_, sizeof temp_);
}

Result<json::value> parse_json(std::string_view body, std::string_view what, JsonScratch& scratch) {
  // The parser's own stack starts in `temp_` and, past it, takes from the same resource.
  json::parser parser(json::storage_ptr(&scratch.resource_), vault_parse_options(), scratch.temp_,
                      sizeof scratch.temp_);
  parser.reset(json::storage_ptr(&scratch.resource_));
  return parse_with(parser, body, what);
}

}  // namespace nicsync::vault::wire
