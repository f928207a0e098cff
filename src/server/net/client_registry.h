// Every connected client of every worker, by id: what CLIENT LIST and CLIENT KILL walk. A
// client registers when it opens and leaves in its destructor. Fields of a client that other
// workers read while listing (its name, library) are written under the same mutex.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace lockstep::server {

class Client;

class ClientRegistry {
 public:
  void add(uint64_t id, Client* c) {
    std::lock_guard lock(mu_);
    clients_[id] = c;
  }
  void remove(uint64_t id) {
    std::lock_guard lock(mu_);
    clients_.erase(id);
  }
  // Runs `f` with the lock held (clients can neither leave nor rename meanwhile).
  template <typename F>
  auto locked(F&& f) {
    std::lock_guard lock(mu_);
    return f(clients_);
  }
  std::mutex& mutex() { return mu_; }

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, Client*> clients_;
};

}  // namespace lockstep::server
