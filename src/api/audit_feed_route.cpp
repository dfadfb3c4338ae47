#include "nicsync/api/audit_feed_route.hpp"

#include <memory>

namespace nicsync::api {
namespace asio = boost::asio;

void add_audit_feed_route(http::Router& router, std::optional<Secret> token, AuditFeedTaker take) {
  auto expected = std::make_shared<const std::optional<Secret>>(std::move(token));
  router.add("POST", std::string(kAuditFeedPath),
             [expected, take = std::move(take)](const http::ServerRequest& r) -> asio::awaitable<http::ServerResponse> {
               bool authorized = false;
               if (auto h = r.header("Authorization"); h && *expected && h->starts_with("Bearer ")) {
                 authorized = Secret(h->substr(7)) == **expected;  // constant time
               }
               take(r.body, authorized);
               http::ServerResponse resp;
               resp.status = 204;
               co_return resp;
             });
}

}  // namespace nicsync::api
