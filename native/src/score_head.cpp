#include "score_head.h"

#include "session.h"

#include "ggml-backend.h"
#include "ggml.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace selftune {

struct ScoreHead::Seq {
    ScoreHead * head;
    llama_seq_id id;
    std::vector<int32_t> rows;        // this sequence's rows in the current graph, in order
    std::deque<llama_token> queue;    // n_gather ids per pending output row
};

namespace {

ScoreHead::Seq & seq_of(llama_sampler * smpl) { return *static_cast<ScoreHead::Seq *>(smpl->ctx); }

const char * head_name(const llama_sampler *) { return "selftune-score-head"; }

// The CPU sampling path: never taken while the head is installed (llama.cpp copies no raw
// logits for these sequences), and nothing to do if it were.
void head_apply_cpu(llama_sampler *, llama_token_data_array *) {}

bool head_backend_init(llama_sampler *, ggml_backend_buffer_type_t, uint32_t) { return true; }

void head_backend_apply(llama_sampler * smpl, ggml_context * ctx, ggml_cgraph *, llama_sampler_data * data) {
    ScoreHead::Seq & s = seq_of(smpl);
    data->logits = s.head->output_row(ctx, s, data->logits);
}

void head_backend_set_input(llama_sampler * smpl) {
    ScoreHead::Seq & s = seq_of(smpl);
    s.head->set_input(s);
}

void head_backend_reset(llama_sampler * smpl) {
    ScoreHead::Seq & s = seq_of(smpl);
    s.rows.clear();
    s.head->reset_graph();
}

llama_sampler_i head_iface = {
    /* .name              = */ head_name,
    /* .accept            = */ nullptr,
    /* .apply             = */ head_apply_cpu,
    /* .reset             = */ nullptr,
    /* .clone             = */ nullptr,
    /* .free              = */ nullptr,   // the Seq belongs to the ScoreHead
    /* .backend_init      = */ head_backend_init,
    /* .backend_accept    = */ nullptr,
    /* .backend_apply     = */ head_backend_apply,
    /* .backend_set_input = */ head_backend_set_input,
    /* .backend_reset     = */ head_backend_reset,
    /* .copy_state        = */ nullptr,
};

}  // namespace

ScoreHead::ScoreHead(Session & session, const std::vector<llama_seq_id> & seqs, int32_t n_gather)
    : session_(session), n_gather_(std::max(1, n_gather)), installed_(session.ctx()) {
    for (llama_seq_id id : seqs) {
        seqs_.push_back(std::make_unique<Seq>(Seq{this, id, {}, {}}));
        installed_.install(id, llama_sampler_init(&head_iface, seqs_.back().get()));
    }
}

ScoreHead::~ScoreHead() = default;

void ScoreHead::push(llama_seq_id seq, const llama_token * ids) {
    for (auto & s : seqs_) {
        if (s->id != seq) continue;
        s->queue.insert(s->queue.end(), ids, ids + n_gather_);
        return;
    }
    throw std::logic_error("ScoreHead::push: sequence " + std::to_string(seq) + " has no head");
}

void ScoreHead::clear_queues() {
    for (auto & s : seqs_) s->queue.clear();
    broken_ = false;
}

const float * ScoreHead::row(int32_t batch_index) const {
    llama_context * ctx = session_.ctx();
    // Every row pushed must have been taken by a graph row, and every graph row must have
    // had one; anything else means llama.cpp split or reused graphs in a way this file
    // does not expect, and the numbers would be wrong.
    bool leftover = false;
    for (const auto & s : seqs_) leftover = leftover || !s->queue.empty();
    if (broken_ || leftover) throw std::runtime_error("score head: the decode's output rows did not match the queued gather lists");
    const float * r = llama_get_sampled_logits_ith(ctx, batch_index);
    if (!r || llama_get_sampled_logits_count_ith(ctx, batch_index) != (uint32_t) (1 + n_gather_)) {
        throw std::runtime_error("score head: llama.cpp returned no reduced row for a requested position");
    }
    return r;
}

void ScoreHead::reset_graph() {
    base_ = result_ = indices_ = nullptr;
}

// Called for each output row while llama.cpp builds a graph; `logits` is that row, a view
// of the graph's [n_vocab, n_rows] logits (a bare vector when llama.cpp probes the chain).
ggml_tensor * ScoreHead::output_row(ggml_context * ctx, Seq & seq, ggml_tensor * logits) {
    ggml_tensor * base = logits->view_src ? logits->view_src : logits;
    if (base != base_) {
        base_ = base;
        ggml_tensor * L = ggml_is_contiguous(base) ? base : ggml_cont(ctx, base);
        const int64_t V = L->ne[0], n = ggml_nrows(L);
        L = ggml_reshape_2d(ctx, L, V, n);
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
    const int32_t row = logits->view_src ? (int32_t) (logits->view_offs / base->nb[1]) : 0;
    seq.rows.push_back(row);
    return ggml_view_1d(ctx, result_, result_->ne[0], (size_t) row * result_->nb[1]);
}

// Called before the graph runs, for each sequence with rows in it: its rows take the next
// queued gather lists. The whole index matrix goes up each time (a few KB): the host copy
// always holds valid ids, so rows no sequence owns (llama.cpp's padding row) and rows of
// sequences not yet visited are valid too.
void ScoreHead::set_input(Seq & seq) {
    if (!indices_) return;
    const size_t G = (size_t) n_gather_;
    for (int32_t r : seq.rows) {
        if (seq.queue.size() < G) {   // not thrown through llama.cpp: row() reports it
            broken_ = true;
            continue;
        }
        for (size_t k = 0; k < G; k++) {
            host_indices_[(size_t) r * G + k] = seq.queue.front();
            seq.queue.pop_front();
        }
    }
    ggml_backend_tensor_set(indices_, host_indices_.data(), 0, host_indices_.size() * sizeof(int32_t));
}

}  // namespace selftune
