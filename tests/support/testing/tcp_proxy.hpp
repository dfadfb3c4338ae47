#pragma once
// A TCP proxy on 127.0.0.1 in front of one upstream port, on a thread of its own. `blackhole`
// stops forwarding in both directions while keeping every socket open (a partition: the peer
// sees no reset, no FIN, just silence); `restore` forwards again (bytes read meanwhile are
// dropped, as a partition would lose them).
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace nicsync::testing {

class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t upstream_port)
      : upstream_(boost::asio::ip::make_address("127.0.0.1"), upstream_port),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TcpProxy() {
    io_.stop();
    thread_.join();
  }
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  [[nodiscard]] std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void blackhole() { holed_ = true; }
  void restore() { holed_ = false; }
  /// Connections accepted so far.
  [[nodiscard]] int accepted() const { return accepted_; }

 private:
  using tcp = boost::asio::ip::tcp;
  struct Link : std::enable_shared_from_this<Link> {
    Link(boost::asio::io_context& io, TcpProxy& p) : proxy(p), client(io), server(io) {}
    TcpProxy& proxy;
    tcp::socket client;
    tcp::socket server;
    std::array<char, 16384> up{};
    std::array<char, 16384> down{};

    void pump(tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
      from.async_read_some(boost::asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](
                                                         boost::system::error_code ec, std::size_t n) {
        if (ec) {
          self->close();
          return;
        }
        if (self->proxy.holed_) {  // read and drop: the sender sees its bytes go, nothing arrives
          self->pump(from, to, buf);
          return;
        }
        boost::asio::async_write(to, boost::asio::buffer(buf.data(), n),
                                 [self, &from, &to, &buf](boost::system::error_code ec2, std::size_t) {
                                   if (ec2) {
                                     self->close();
                                     return;
                                   }
                                   self->pump(from, to, buf);
                                 });
      });
    }
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
  };

  void accept() {
    auto link = std::make_shared<Link>(io_, *this);
    acceptor_.async_accept(link->client, [this, link](boost::system::error_code ec) {
      if (ec) return;
      ++accepted_;
      link->server.async_connect(upstream_, [link](boost::system::error_code ec2) {
        if (ec2) {
          link->close();
          return;
        }
        link->pump(link->client, link->server, link->up);
        link->pump(link->server, link->client, link->down);
      });
      accept();
    });
  }

  boost::asio::io_context io_;
  tcp::endpoint upstream_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> holed_{false};
  std::atomic<int> accepted_{0};
};

}  // namespace nicsync::testing
