#include "score_head.h"

#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace selftune {

ScoreHead::ScoreHead(llama_context * ctx, const std::vector<llama_seq_id> & seqs, int32_t n_gather)
    : GraphHead(ctx), ctx_(ctx), n_gather_(std::max(1, n_gather)) {
    for (llama_seq_id id : seqs) queues_[id];
    install(seqs);
}

void ScoreHead::push(llama_seq_id seq, const llama_token * ids) {
    auto it = queues_.find(seq);
    if (it == queues_.end()) throw std::logic_error("ScoreHead::push: sequence " + std::to_string(seq) + " has no head");
    it->second.insert(it->second.end(), ids, ids + n_gather_);
}

void ScoreHead::clear_queues() {
    for (auto & q : queues_) q.second.clear();
    broken_ = false;
}

const float * ScoreHead::row(int32_t batch_index) const {
    // Every row pushed must have been taken by a graph row, and every graph row must have
    // had one; anything else means llama.cpp split or reused graphs in a way this file
    // does not expect, and the numbers would be wrong.
    bool leftover = false;
    for (const auto & q : queues_) leftover = leftover || !q.second.empty();
    if (broken_ || leftover) throw std::runtime_error("score head: the decode's output rows did not match the queued gather lists");
    const float * r = llama_get_sampled_logits_ith(ctx_, batch_index);
    if (!r || llama_get_sampled_logits_count_ith(ctx_, batch_index) != (uint32_t) (1 + n_gather_)) {
        throw std::runtime_error("score head: llama.cpp returned no reduced row for a requested position");
    }
    return r;
}

void ScoreHead::build(ggml_context * ctx, ggml_tensor * L) {
    const int64_t V = L->ne[0], n = L->ne[1];
    ggml_tensor * L3 = ggml_reshape_3d(ctx, L, 1, V, n);   // a vocabulary of 1-float rows per output row
    ggml_tensor * top = ggml_reshape_2d(ctx, ggml_argmax(ctx, L), 1, n);
    ggml_tensor * probs = ggml_reshape_3d(ctx, ggml_soft_max(ctx, L), 1, V, n);
    ggml_tensor * lse = ggml_sub(ctx, ggml_get_rows(ctx, L3, top), ggml_log(ctx, ggml_get_rows(ctx, probs, top)));
    indices_ = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, n_gather_, n);
    ggml_set_name(indices_, "score_head_indices");
    ggml_set_input(indices_);
    ggml_tensor * gathered = ggml_get_rows(ctx, L3, indices_);   // [1, n_gather, n]
    result_ = ggml_concat(ctx, ggml_reshape_2d(ctx, lse, 1, n), ggml_reshape_2d(ctx, gathered, n_gather_, n), 0);
    ggml_set_name(result_, "score_head");
    // Every entry always holds a valid token id (0 until set): rows no sequence owns,
    // like llama.cpp's padding row, are gathered too.
    host_indices_.assign((size_t) (n_gather_ * n), 0);
}

void ScoreHead::output(ggml_context * ctx, int32_t row, llama_sampler_data * data) {
    data->logits = ggml_view_1d(ctx, result_, result_->ne[0], (size_t) row * result_->nb[1]);
}

// Called before the graph runs, for each sequence with rows in it: its rows take the next
// queued gather lists. The whole index matrix goes up each time (a few KB): the host copy
// always holds valid ids, so rows no sequence owns (llama.cpp's padding row) and rows of
// sequences not yet visited are valid too.
void ScoreHead::set_input(Seq & seq) {
    if (!indices_) return;
    std::deque<llama_token> & q = queues_[seq.id];
    const size_t G = (size_t) n_gather_;
    for (int32_t r : seq.rows) {
        if (q.size() < G) {   // not thrown through llama.cpp: row() reports it
            broken_ = true;
            continue;
        }
        std::copy(q.begin(), q.begin() + (ptrdiff_t) G, host_indices_.begin() + (ptrdiff_t) ((size_t) r * G));
        q.erase(q.begin(), q.begin() + (ptrdiff_t) G);
    }
    ggml_backend_tensor_set(indices_, host_indices_.data(), 0, host_indices_.size() * sizeof(int32_t));
}

}  // namespace selftune
