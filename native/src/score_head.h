// The scorer's log-softmax, computed inside llama.cpp's decode graph (graph_head.h).
//
// Scoring wants, per output position, log p(token) = logit[token] - logsumexp(logits):
// two numbers out of a vocabulary-sized row. Read on the host, every row is 600 KB on
// Qwen (152k floats) copied off the GPU and swept on the CPU: 15 GB for 25k scored
// tokens, more than the forward pass itself. Here the graph computes, for all rows at
// once (argmax, softmax, three gathers),
//
//     lse = logit[argmax] - log(softmax[argmax])     (softmax[argmax] >= 1/n_vocab: no underflow)
//     row = [lse, logit[g_0], ..., logit[g_{n-1}]]   g: the tokens to gather at that row
//
// and each row brings back its 1 + n floats (read with row()).
//
// Which tokens to gather is input data, uploaded when llama.cpp sets the graph's inputs:
// each sequence's rows take, in order, the gather lists pushed for that sequence. That
// holds because llama.cpp splits a batch into micro-batches in each sequence's position
// order, and reuses a graph only for the same rows of the same sequences.
#pragma once

#include "graph_head.h"

#include <deque>
#include <unordered_map>

namespace selftune {

class ScoreHead : public GraphHead {
  public:
    // Installs the head on `seqs` of `ctx`; each row gathers `n_gather` token logits.
    ScoreHead(llama_context * ctx, const std::vector<llama_seq_id> & seqs, int32_t n_gather);

    int32_t n_gather() const { return n_gather_; }

    // Queues the tokens to gather at `seq`'s next output row (exactly n_gather ids).
    void push(llama_seq_id seq, const llama_token * ids);
    // Drops whatever was queued and not consumed (before retrying a failed decode).
    void clear_queues();
    // After the decode: [lse, gathered logits...] of the output at batch index i.
    const float * row(int32_t batch_index) const;

  private:
    void build(ggml_context * ctx, ggml_tensor * logits) override;
    void output(ggml_context * ctx, int32_t row, llama_sampler_data * data) override;
    void set_input(Seq & seq) override;

    llama_context * ctx_;
    int32_t n_gather_;
    std::unordered_map<llama_seq_id, std::deque<llama_token>> queues_;   // n_gather ids per pending row
    ggml_tensor * result_ = nullptr;    // [1 + n_gather, n_rows]
    ggml_tensor * indices_ = nullptr;   // [n_gather, n_rows] i32, an input
    std::vector<int32_t> host_indices_;
    bool broken_ = false;               // a graph row found no queued gather list
};

}  // namespace selftune
