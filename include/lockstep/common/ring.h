// A FIFO on a power-of-two array that keeps its elements (and their buffers) when they are
// popped, so a steady request stream reuses the same slots instead of allocating. std::deque
// is avoided on purpose: libstdc++ allocates ~600 bytes for an empty deque, which alone would
// break the 1 KiB-per-idle-connection budget.
#pragma once

#include <cassert>
#include <cstddef>
#include <utility>
#include <vector>

namespace lockstep {

template <typename T>
class Ring {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() { return items_[head_]; }
  T& operator[](size_t i) { return items_[(head_ + i) & (items_.size() - 1)]; }

  // Returns the (reused) element at the back; its previous contents are not cleared.
  T& push_back() {
    if (size_ == items_.size()) grow();
    T& t = items_[(head_ + size_) & (items_.size() - 1)];
    ++size_;
    return t;
  }
  void pop_front() {
    assert(size_ > 0);
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
  }
  void clear() {
    head_ = 0;
    size_ = 0;
  }
  // Drops the storage (idle connections should cost nothing).
  void release() {
    std::vector<T>().swap(items_);
    clear();
  }

 private:
  void grow() {
    std::vector<T> bigger(items_.empty() ? 4 : items_.size() * 2);
    for (size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace lockstep
