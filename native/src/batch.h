// A llama_batch we own, with one sequence id per token (all our jobs need).
#pragma once

#include "llama.h"

#include <cstdint>

namespace selftune {

class Batch {
  public:
    explicit Batch(int32_t capacity) : b_(llama_batch_init(capacity, 0, 1)), capacity_(capacity) {}
    ~Batch() { llama_batch_free(b_); }
    Batch(const Batch &) = delete;
    Batch & operator=(const Batch &) = delete;

    void clear() { b_.n_tokens = 0; }
    // Returns the token's index in the batch (what llama_get_logits_ith takes).
    int32_t add(llama_token token, llama_pos pos, llama_seq_id seq, bool output) {
        const int32_t i = b_.n_tokens++;
        b_.token[i] = token;
        b_.pos[i] = pos;
        b_.n_seq_id[i] = 1;
        b_.seq_id[i][0] = seq;
        b_.logits[i] = output ? 1 : 0;
        return i;
    }
    int32_t size() const { return b_.n_tokens; }
    int32_t capacity() const { return capacity_; }
    const llama_batch & get() const { return b_; }

  private:
    llama_batch b_;
    int32_t capacity_;
};

}  // namespace selftune
