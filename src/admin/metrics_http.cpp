#include "admin/metrics_http.h"

#include <fmt/format.h>
#include <http_parser.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <uv.h>

#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lockstep/admin/prometheus.h"

namespace lockstep::admin {
namespace {

constexpr size_t kMaxConnections = 64;
constexpr uint64_t kIdleMs = 120'000;
constexpr uint64_t kSweepMs = 10'000;

}  // namespace

struct MetricsHttpServer::Impl {
  struct Conn {
    Impl* server = nullptr;
    uv_tcp_t tcp{};
    http_parser parser{};
    std::string url;
    uint64_t last_active_ms = 0;
    int writes_pending = 0;
    bool close_after_write = false;
    bool closing = false;
  };
  struct Write {
    uv_write_t req{};
    std::string data;
    Conn* conn = nullptr;
  };

  explicit Impl(Render r) : render(std::move(r)) {
    http_parser_settings_init(&settings);
    settings.on_message_begin = [](http_parser* p) {
      static_cast<Conn*>(p->data)->url.clear();
      return 0;
    };
    settings.on_url = [](http_parser* p, const char* at, size_t len) {
      auto* c = static_cast<Conn*>(p->data);
      if (c->url.size() + len > 8192) return 1;  // a URL this long is no scrape: 400
      c->url.append(at, len);
      return 0;
    };
    settings.on_message_complete = [](http_parser* p) {
      auto* c = static_cast<Conn*>(p->data);
      c->server->respond(*c);
      // Parsing stops after a request that ends the connection; what follows is ignored.
      if (c->close_after_write) http_parser_pause(p, 1);
      return 0;
    };
  }

  void respond(Conn& c) {
    const bool keep_alive = http_should_keep_alive(&c.parser) != 0;
    std::string_view path;
    http_parser_url u{};
    http_parser_url_init(&u);
    if (http_parser_parse_url(c.url.data(), c.url.size(), 0, &u) == 0 &&
        (u.field_set & (1u << UF_PATH)) != 0)
      path = std::string_view(c.url).substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    const auto method = static_cast<http_method>(c.parser.method);
    if (path != "/metrics") {
      reply(c, 404, "Not Found", "text/plain; charset=utf-8",
            "Not found; metrics are at /metrics\n", keep_alive);
    } else if (method != HTTP_GET && method != HTTP_HEAD) {
      reply(c, 405, "Method Not Allowed", "text/plain; charset=utf-8",
            "Only GET and HEAD are allowed on /metrics\n", keep_alive, "Allow: GET, HEAD\r\n");
    } else {
      std::string body = render();
      reply(c, 200, "OK", kContentType, body, keep_alive, {}, method == HTTP_HEAD);
    }
  }

  void reply(Conn& c, int status, std::string_view reason, std::string_view type,
             std::string_view body, bool keep_alive, std::string_view extra_headers = {},
             bool head = false) {
    auto w = std::make_unique<Write>();
    fmt::format_to(std::back_inserter(w->data),
                   "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: "
                   "{}\r\n\r\n",
                   status, reason, type, body.size(), extra_headers,
                   keep_alive ? "keep-alive" : "close");
    if (!head) w->data.append(body);
    if (!keep_alive) c.close_after_write = true;
    uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    w->conn = &c;
    w->req.data = w.get();
    if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, on_write) != 0) {
      close(c);
      return;
    }
    ++c.writes_pending;
    (void)w.release();  // owned again by on_write
    // A client that pipelines requests without reading the replies gets no more read until
    // its replies are written: its memory stays one reply deep.
    if (!c.closing && !c.close_after_write) uv_read_stop(reinterpret_cast<uv_stream_t*>(&c.tcp));
  }

  static void on_write(uv_write_t* req, int status) {
    std::unique_ptr<Write> w(static_cast<Write*>(req->data));
    Conn* c = w->conn;
    --c->writes_pending;
    if (status < 0 || (c->close_after_write && c->writes_pending == 0)) {
      c->server->close(*c);
    } else if (c->writes_pending == 0 && !c->closing && !c->close_after_write) {
      uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
    }
  }

  void close(Conn& c) {
    if (c.closing) return;
    c.closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), [](uv_handle_t* h) {
      auto* conn = static_cast<Conn*>(h->data);
      conn->server->conns.erase(conn);
    });
  }

  static void on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<Impl*>(listener->data);
    if (status < 0) return;
    auto conn = std::make_unique<Conn>();
    Conn& c = *conn;
    c.server = self;
    uv_tcp_init(&self->loop, &c.tcp);
    c.tcp.data = &c;
    self->conns.emplace(&c, std::move(conn));
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c.tcp)) != 0 ||
        self->conns.size() > kMaxConnections) {
      self->close(c);
      return;
    }
    http_parser_init(&c.parser, HTTP_REQUEST);
    c.parser.data = &c;
    c.last_active_ms = uv_now(&self->loop);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), on_alloc, on_read);
  }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Conn*>(h->data)->server;
    *buf = uv_buf_init(self->read_buf, sizeof(self->read_buf));
  }

  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Conn*>(s->data);
    Impl* self = c->server;
    if (nread < 0) {
      self->close(*c);
      return;
    }
    if (nread == 0 || c->closing || c->close_after_write) return;
    c->last_active_ms = uv_now(&self->loop);
    http_parser_execute(&c->parser, &self->settings, buf->base, static_cast<size_t>(nread));
    const auto err = HTTP_PARSER_ERRNO(&c->parser);
    if (err == HPE_PAUSED) {
      uv_read_stop(s);  // closing once the reply is written
    } else if (err != HPE_OK || c->parser.upgrade) {
      uv_read_stop(s);
      self->reply(*c, 400, "Bad Request", "text/plain; charset=utf-8",
                  fmt::format("{}\n", http_errno_description(err)), false);
    }
  }

  static void on_sweep(uv_timer_t* t) {
    auto* self = static_cast<Impl*>(t->data);
    const uint64_t now = uv_now(&self->loop);
    std::vector<Conn*> idle;
    for (auto& [c, owned] : self->conns)
      if (c->writes_pending == 0 && now - c->last_active_ms > kIdleMs) idle.push_back(c);
    for (Conn* c : idle) self->close(*c);
  }

  static void on_stop(uv_async_t* a) {
    auto* self = static_cast<Impl*>(a->data);
    std::vector<Conn*> all;
    for (auto& [c, owned] : self->conns) all.push_back(c);
    for (Conn* c : all) self->close(*c);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->listener), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->sweep), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->stop_async), nullptr);
  }

  Render render;
  http_parser_settings settings{};
  uv_loop_t loop{};
  uv_tcp_t listener{};
  uv_timer_t sweep{};
  uv_async_t stop_async{};
  bool loop_open = false;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns;
  std::thread thread;
  std::mutex stop_mu;
  char read_buf[16 * 1024];
};

MetricsHttpServer::MetricsHttpServer(Render render)
    : impl_(std::make_unique<Impl>(std::move(render))) {}

MetricsHttpServer::~MetricsHttpServer() {
  stop();
  if (impl_->loop_open) uv_loop_close(&impl_->loop);
}

bool MetricsHttpServer::start(const std::string& host, uint16_t port, std::string& error) {
  Impl& s = *impl_;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0 || !res) {
    error = fmt::format("cannot resolve {}: {}", host, gai_strerror(rc));
    return false;
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, freeaddrinfo);
  uv_loop_init(&s.loop);
  s.loop_open = true;
  uv_tcp_init(&s.loop, &s.listener);
  s.listener.data = &s;
  int rc = uv_tcp_bind(&s.listener, res->ai_addr, 0);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&s.listener), 128, Impl::on_connection);
  if (rc != 0) {
    error = fmt::format("cannot listen on {}:{}: {}", host, port, uv_strerror(rc));
    uv_close(reinterpret_cast<uv_handle_t*>(&s.listener), nullptr);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    return false;
  }
  uv_timer_init(&s.loop, &s.sweep);
  s.sweep.data = &s;
  uv_timer_start(&s.sweep, Impl::on_sweep, kSweepMs, kSweepMs);
  uv_async_init(&s.loop, &s.stop_async, Impl::on_stop);
  s.stop_async.data = &s;
  s.thread = std::thread([&s] { uv_run(&s.loop, UV_RUN_DEFAULT); });
  return true;
}

void MetricsHttpServer::stop() {
  Impl& s = *impl_;
  std::lock_guard lock(s.stop_mu);
  if (!s.thread.joinable()) return;
  uv_async_send(&s.stop_async);
  s.thread.join();
}

}  // namespace lockstep::admin
