#include "graph_head.h"

#include "ggml.h"

#include <stdexcept>

namespace selftune {

namespace {

GraphHead::Seq & seq_of(llama_sampler * smpl) { return *static_cast<GraphHead::Seq *>(smpl->ctx); }

const char * head_name(const llama_sampler *) { return "selftune-graph-head"; }

// The CPU sampling path: never taken while a head is installed (llama.cpp copies no raw
// logits for these sequences), and nothing to do if it were.
void head_apply_cpu(llama_sampler *, llama_token_data_array *) {}

// Every op a head uses (argmax, softmax, get_rows, log, sub, concat) exists on the CPU
// backend, and ggml's scheduler runs an op the model's device lacks there.
bool head_backend_init(llama_sampler *, ggml_backend_buffer_type_t, uint32_t) { return true; }

void head_backend_apply(llama_sampler * smpl, ggml_context * ctx, ggml_cgraph *, llama_sampler_data * data) {
    GraphHead::Seq & s = seq_of(smpl);
    s.head->on_apply(ctx, s, data);
}

void head_backend_set_input(llama_sampler * smpl) {
    GraphHead::Seq & s = seq_of(smpl);
    s.head->on_set_input(s);
}

void head_backend_reset(llama_sampler * smpl) {
    GraphHead::Seq & s = seq_of(smpl);
    s.head->on_reset(s);
}

llama_sampler_i head_iface = {
    /* .name              = */ head_name,
    /* .accept            = */ nullptr,
    /* .apply             = */ head_apply_cpu,
    /* .reset             = */ nullptr,
    /* .clone             = */ nullptr,
    /* .free              = */ nullptr,   // the Seq belongs to the head
    /* .backend_init      = */ head_backend_init,
    /* .backend_accept    = */ nullptr,
    /* .backend_apply     = */ head_backend_apply,
    /* .backend_set_input = */ head_backend_set_input,
    /* .backend_reset     = */ head_backend_reset,
    /* .copy_state        = */ nullptr,
};

}  // namespace

void GraphHead::install(const std::vector<llama_seq_id> & seqs) {
    for (llama_seq_id id : seqs) {
        seqs_.push_back(std::make_unique<Seq>(Seq{this, id, {}}));
        installed_.install(id, llama_sampler_init(&head_iface, seqs_.back().get()));
    }
}

// llama.cpp resets every sampler before it builds a graph's sampling part.
void GraphHead::on_reset(Seq & seq) {
    seq.rows.clear();
    base_ = nullptr;
}

// `data->logits` is one output row: a view of the graph's [n_vocab, n_rows] logits, or a
// bare vector when llama.cpp probes the chain at install time.
void GraphHead::on_apply(ggml_context * ctx, Seq & seq, llama_sampler_data * data) {
    ggml_tensor * row_view = data->logits;
    ggml_tensor * base = row_view->view_src ? row_view->view_src : row_view;
    if (base != base_) {
        base_ = base;
        ggml_tensor * all = ggml_is_contiguous(base) ? base : ggml_cont(ctx, base);
        build(ctx, ggml_reshape_2d(ctx, all, all->ne[0], ggml_nrows(all)));
    }
    const int32_t row = row_view->view_src ? (int32_t) (row_view->view_offs / base->nb[1]) : 0;
    seq.rows.push_back(row);
    data->logits = nullptr;
    output(ctx, row, data);
}

GreedyHead::GreedyHead(llama_context * ctx, const std::vector<llama_seq_id> & seqs) : GraphHead(ctx) { install(seqs); }

void GreedyHead::build(ggml_context * ctx, ggml_tensor * logits) {
    // ggml's argmax keeps the first of equal maxima on the CPU, as our host argmax does.
    picks_ = ggml_argmax(ctx, logits);
    ggml_set_name(picks_, "greedy_head");
}

void GreedyHead::output(ggml_context * ctx, int32_t row, llama_sampler_data * data) {
    data->sampled = ggml_view_1d(ctx, picks_, 1, (size_t) row * picks_->nb[0]);
}

llama_token GreedyHead::token(llama_context * ctx, int32_t batch_index) {
    const llama_token t = llama_get_sampled_token_ith(ctx, batch_index);
    if (t == LLAMA_TOKEN_NULL) throw std::runtime_error("the greedy head returned no token for a requested position");
    return t;
}

}  // namespace selftune
