#pragma once
// A scriptable TCP/HTTP(S) responder for the prober tests, on its own thread and asio
// loop: reads a request head, then answers with canned bytes, stays silent, or (with the
// listener closed) lets connections be refused. After answering it closes the connection,
// or with keepAlive(true) reads the next request on it, like an HTTP/1.1 server keeping
// connections alive. Test support only.

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ng::health::testing {

// A throwaway self-signed certificate (EC P-256, CN nodegate-test) in PEM.
struct SelfSigned {
  std::string cert_pem;
  std::string key_pem;
};

inline SelfSigned makeSelfSigned() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  if (!key || !x) throw std::runtime_error("openssl: key/cert allocation failed");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("nodegate-test"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (X509_sign(x, key, EVP_sha256()) == 0) throw std::runtime_error("openssl: sign failed");
  auto pem = [](auto write) {
    BIO* bio = BIO_new(BIO_s_mem());
    write(bio);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<size_t>(n));
    BIO_free(bio);
    return out;
  };
  SelfSigned out{
      .cert_pem = pem([&](BIO* b) { PEM_write_bio_X509(b, x); }),
      .key_pem = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); })};
  X509_free(x);
  EVP_PKEY_free(key);
  return out;
}

class TestResponder {
 public:
  // Listens on address:0 (a free port). With `tls`, every connection is TLS first.
  explicit TestResponder(const std::string& address = "127.0.0.1", bool tls = false)
      : endpoint_(asio::ip::make_address(address), 0), acceptor_(io_) {
    if (tls) {
      const SelfSigned cert = makeSelfSigned();
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      tls_->use_certificate_chain(asio::buffer(cert.cert_pem));
      tls_->use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    }
    openListener();
    endpoint_.port(acceptor_.local_endpoint().port());
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestResponder() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  [[nodiscard]] uint16_t port() const { return endpoint_.port(); }

  // Bytes written after each request head; the connection is then closed by us.
  void respond(std::string bytes) {
    std::lock_guard lock(mu_);
    response_ = std::move(bytes);
    silent_ = false;
  }
  // Accept and read, never answer (the prober must time out).
  void beSilent() {
    std::lock_guard lock(mu_);
    silent_ = true;
  }
  // After answering, keep the connection and serve the next request on it.
  void keepAlive(bool on) {
    std::lock_guard lock(mu_);
    keep_alive_ = on;
  }
  // Answers are written this long after the request head was read (0: at once).
  void delayAnswers(std::chrono::milliseconds delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }
  // Each answer goes out in two writes `gap` apart, the first one its first 20 bytes (in
  // the middle of the status line and headers); zero: one write.
  void splitAnswers(std::chrono::milliseconds gap) {
    std::lock_guard lock(mu_);
    split_gap_ = gap;
  }
  // A second request on a kept connection is answered with a reset instead, as when the
  // server's idle timeout closed it just as the request came in.
  void resetReusedConnections(bool on) {
    std::lock_guard lock(mu_);
    reset_reused_ = on;
  }
  // Closes every connection this side has open (a restarted server), listener untouched.
  void closeConnections() {
    onLoop([this] {
      std::lock_guard lock(mu_);
      held_.clear();
      for (auto& weak : open_) {
        if (auto socket = weak.lock()) {
          std::error_code ignored;
          socket->close(ignored);
        }
      }
      open_.clear();
    });
  }
  // Closing the listener makes connects refused; reopening takes the same port.
  void closeListener() {
    onLoop([this] { acceptor_.close(); });
  }
  void reopenListener() {
    onLoop([this] { openListener(); });
  }

  [[nodiscard]] std::string lastRequest() {
    std::lock_guard lock(mu_);
    return last_request_;
  }
  [[nodiscard]] std::string lastPeer() {
    std::lock_guard lock(mu_);
    return last_peer_;
  }
  [[nodiscard]] int accepted() const { return accepted_.load(); }
  [[nodiscard]] int requests() const { return requests_.load(); }  // request heads read
  // Connections this side still has open (closed once the client closes them).
  [[nodiscard]] int openConnections() {
    std::lock_guard lock(mu_);
    int n = 0;
    for (auto& weak : open_) n += !weak.expired();
    return n;
  }

  // A response with Content-Length; "Connection: close" unless `close` is false.
  static std::string http(int status, const std::string& headers, const std::string& body,
                          bool close = true) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\n" + headers + "Content-Length: " +
           std::to_string(body.size()) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n" + body;
  }

 private:
  using Tcp = asio::ip::tcp;

  void openListener() {
    acceptor_.open(endpoint_.protocol());
    acceptor_.set_option(Tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint_);
    acceptor_.listen();
    accept();
  }

  template <class F>
  void onLoop(F f) {
    std::promise<void> done;
    asio::post(io_, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  void accept() {
    acceptor_.async_accept([this](std::error_code ec, Tcp::socket socket) {
      if (ec) return;  // closed
      accepted_.fetch_add(1);
      {
        std::lock_guard lock(mu_);
        std::error_code ignored;
        last_peer_ = socket.remote_endpoint(ignored).address().to_string();
      }
      if (tls_) {
        auto stream = std::make_shared<asio::ssl::stream<Tcp::socket>>(std::move(socket), *tls_);
        track(std::shared_ptr<Tcp::socket>(stream, &stream->next_layer()));
        stream->async_handshake(asio::ssl::stream_base::server,
                                [this, stream](std::error_code ec) {
                                  if (!ec) serve(stream, *stream, std::make_shared<std::string>(), 0);
                                });
      } else {
        auto s = std::make_shared<Tcp::socket>(std::move(socket));
        track(s);
        serve(s, *s, std::make_shared<std::string>(), 0);
      }
      accept();
    });
  }

  void track(const std::shared_ptr<Tcp::socket>& socket) {
    std::lock_guard lock(mu_);
    std::erase_if(open_, [](const auto& weak) { return weak.expired(); });
    open_.push_back(socket);
  }

  // Reads a request head, then answers (or not); with keep-alive, then the next one.
  // `keep` owns the stream; `buf` holds what was read past the last head; `served` is how
  // many requests this connection answered.
  template <class Keep, class Stream>
  void serve(std::shared_ptr<Keep> keep, Stream& stream, std::shared_ptr<std::string> buf,
             int served) {
    asio::async_read_until(stream, asio::dynamic_buffer(*buf), "\r\n\r\n",
                           [this, keep, buf, &stream, served](std::error_code ec, size_t head) {
                             if (ec) return;
                             requests_.fetch_add(1);
                             std::string response;
                             bool keep_alive;
                             std::chrono::milliseconds delay;
                             std::chrono::milliseconds split_gap;
                             {
                               std::lock_guard lock(mu_);
                               last_request_ = buf->substr(0, head);
                               if (served > 0 && reset_reused_) {
                                 auto& socket = stream.lowest_layer();
                                 socket.set_option(Tcp::socket::linger(true, 0), ec);
                                 socket.close(ec);
                                 return;
                               }
                               if (silent_) {
                                 held_.push_back(keep);  // keep it open, say nothing
                                 return;
                               }
                               response = response_;
                               keep_alive = keep_alive_;
                               delay = delay_;
                               split_gap = split_gap_;
                             }
                             buf->erase(0, head);
                             auto out = std::make_shared<std::string>(std::move(response));
                             auto write_rest = [this, keep, out, buf, &stream, served, keep_alive](size_t from) {
                               asio::async_write(
                                   stream, asio::buffer(*out) + from,
                                   [this, keep, out, buf, &stream, served, keep_alive](std::error_code ec, size_t) {
                                     if (!ec && keep_alive) serve(keep, stream, buf, served + 1);
                                   });
                             };
                             auto write = [this, out, &stream, split_gap, write_rest] {
                               const size_t first = std::min<size_t>(20, out->size());
                               if (split_gap.count() == 0 || first == out->size()) return write_rest(0);
                               asio::async_write(
                                   stream, asio::buffer(out->data(), first),
                                   [this, split_gap, write_rest, first](std::error_code ec, size_t) {
                                     if (ec) return;
                                     auto timer = std::make_shared<asio::steady_timer>(io_, split_gap);
                                     timer->async_wait([timer, write_rest, first](std::error_code) { write_rest(first); });
                                   });
                             };
                             if (delay.count() == 0) return write();
                             auto timer = std::make_shared<asio::steady_timer>(io_, delay);
                             timer->async_wait([timer, write](std::error_code) { write(); });
                           });
  }

  std::unique_ptr<asio::ssl::context> tls_;  // outlives io_: queued handlers hold TLS streams
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  Tcp::endpoint endpoint_;
  Tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mu_;
  std::string response_ = http(200, "", "ok");
  bool silent_ = false;
  bool keep_alive_ = false;
  bool reset_reused_ = false;
  std::chrono::milliseconds delay_{0};
  std::chrono::milliseconds split_gap_{0};
  std::string last_request_;
  std::string last_peer_;
  std::list<std::shared_ptr<void>> held_;
  std::vector<std::weak_ptr<Tcp::socket>> open_;  // every connection accepted, while open
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
};

}  // namespace ng::health::testing
