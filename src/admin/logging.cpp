#include "lockstep/admin/logging.h"

#include <fmt/format.h>
#include <spdlog/details/file_helper.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace lockstep::admin {
namespace {

// A file sink whose file can be reopened by name. spdlog 1.10's basic_file_sink cannot, so
// this is a base_sink (spdlog's extension point for sinks) around its file_helper.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {
    file_ = open(path_);  // throws spdlog::spdlog_ex when it cannot be opened
  }

  // The new file is opened before the old one is let go, so a failure keeps logging working.
  void reopen() {
    auto fresh = open(path_);
    std::lock_guard lock(mutex_);
    file_ = std::move(fresh);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    file_->write(line);
  }
  void flush_() override { file_->flush(); }

 private:
  static std::unique_ptr<spdlog::details::file_helper> open(const std::string& path) {
    auto file = std::make_unique<spdlog::details::file_helper>();
    file->open(path, false);  // append
    return file;
  }
  std::string path_;
  std::unique_ptr<spdlog::details::file_helper> file_;
};

// The fields of the request a line is about, for the line being formatted on this thread.
struct RequestFields {
  uint64_t request_id;
  uint64_t client_id;
  std::string_view command;
};
thread_local const RequestFields* t_fields = nullptr;

void append(spdlog::memory_buf_t& dest, std::string_view text) {
  dest.append(text.data(), text.data() + text.size());
}

// %j: the message, JSON-escaped.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append(dest, json_escape(std::string_view(msg.payload.data(), msg.payload.size())));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// %k: the request's fields, when the line is about a request; nothing otherwise.
class RequestFieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  explicit RequestFieldsFlag(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    if (t_fields == nullptr) return;
    if (json_)
      fmt::format_to(std::back_inserter(dest), R"("request_id":{},"client":{},"command":"{}",)",
                     t_fields->request_id, t_fields->client_id, json_escape(t_fields->command));
    else
      fmt::format_to(std::back_inserter(dest), "request_id={} client={} command={} ",
                     t_fields->request_id, t_fields->client_id, t_fields->command);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<RequestFieldsFlag>(json_);
  }

 private:
  bool json_;
};

std::shared_ptr<ReopenableFileSink> g_file_sink;  // set once at start, before other threads
std::atomic<uint64_t> g_next_request_id{1};

}  // namespace

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f)
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", byte);
        else
          out += c;
    }
  }
  return out;
}

bool setup_logging(const config::LogConfig& log) {
  try {
    std::shared_ptr<spdlog::logger> logger;
    if (log.file.empty()) {
      logger = spdlog::stderr_color_mt("lockstep");
    } else {
      g_file_sink = std::make_shared<ReopenableFileSink>(log.file);
      logger = std::make_shared<spdlog::logger>("lockstep", g_file_sink);
    }
    const bool json = log.format == "json";
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>('j').add_flag<RequestFieldsFlag>('k', json);
    formatter->set_pattern(
        json ? R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,%k"msg":"%j"})"
             : "%Y-%m-%d %H:%M:%S.%e %^%l%$ [%t] %k%v");
    logger->set_formatter(std::move(formatter));
    logger->set_level(spdlog::level::from_str(log.level));
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    return true;
  } catch (const spdlog::spdlog_ex& e) {
    std::fprintf(stderr, "lockstep: cannot open log: %s\n", e.what());
    return false;
  }
}

bool reopen_log_file() {
  if (!g_file_sink) return true;
  try {
    g_file_sink->reopen();
    return true;
  } catch (const spdlog::spdlog_ex& e) {
    std::fprintf(stderr, "lockstep: cannot reopen the log file: %s\n", e.what());
    return false;
  }
}

uint64_t next_request_id() {
  return g_next_request_id.fetch_add(1, std::memory_order_relaxed);
}

void log_request_error(uint64_t request_id, uint64_t client_id, std::string_view command,
                       std::string_view message) {
  const RequestFields fields{request_id, client_id, command};
  struct Scope {
    explicit Scope(const RequestFields* f) { t_fields = f; }
    ~Scope() { t_fields = nullptr; }
  } scope(&fields);
  spdlog::error("request failed: {}", message);
}

}  // namespace lockstep::admin
