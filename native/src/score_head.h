// The scorer's log-softmax, computed inside llama.cpp's graph on the model's own device.
//
// Scoring wants, per output position, log p(token) = logit[token] - logsumexp(logits):
// two numbers out of a vocabulary-sized row. Read on the host, every row is 600 KB on
// Qwen (152k floats) copied off the GPU and swept on the CPU: 15 GB for 25k scored
// tokens, more than the forward pass itself. ScoreHead appends the reduction to the
// decode graph instead, so 4 bytes per wanted value come back.
//
// It rides llama.cpp's backend-sampling hook (seq_samplers.h): a sampler chain per work
// sequence whose only member is ours. llama.cpp then skips the raw logit copy for those
// sequences and copies, per output row, the small tensor our sampler hands back
// (read with llama_get_sampled_logits_ith). The hook calls the sampler once per output
// row; the first call of a graph builds the reduction over all rows at once (argmax,
// softmax, three gathers), and each row's call returns its row of the result:
//
//     lse = logit[argmax] - log(softmax[argmax])     (softmax[argmax] >= 1/n_vocab: no underflow)
//     row = [lse, logit[g_0], ..., logit[g_{n-1}]]   g: the tokens to gather at that row
//
// Which tokens to gather is input data, uploaded when llama.cpp sets the graph's inputs:
// each sequence's rows take, in order, the gather lists pushed for that sequence. That
// holds because llama.cpp splits a batch into micro-batches in each sequence's position
// order, and reuses a graph only for the same rows of the same sequences.
#pragma once

#include "seq_samplers.h"

#include "llama.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

struct ggml_tensor;

namespace selftune {

class Session;

class ScoreHead {
  public:
    // Installs the samplers on `seqs` of the session's context; each row gathers
    // `n_gather` token logits. An op the model's device lacks runs on the CPU backend
    // (ggml's scheduler places it), so the numbers hold on any backend.
    ScoreHead(Session & session, const std::vector<llama_seq_id> & seqs, int32_t n_gather);
    // Removes the samplers: later decodes copy raw logits again.
    ~ScoreHead();
    ScoreHead(const ScoreHead &) = delete;
    ScoreHead & operator=(const ScoreHead &) = delete;

    int32_t n_gather() const { return n_gather_; }

    // Queues the tokens to gather at `seq`'s next output row (exactly n_gather ids).
    void push(llama_seq_id seq, const llama_token * ids);
    // After the decode: [lse, gathered logits...] of the output at batch index i.
    const float * row(int32_t batch_index) const;
    // Drops whatever was queued and not consumed (before retrying a failed decode).
    void clear_queues();

    // llama.cpp's side (see score_head.cpp); public for the C callbacks only.
    struct Seq;
    void reset_graph();
    ggml_tensor * output_row(struct ggml_context * ctx, Seq & seq, ggml_tensor * logits);
    void set_input(Seq & seq);

  private:
    Session & session_;
    int32_t n_gather_;
    std::vector<std::unique_ptr<Seq>> seqs_;
    SeqSamplers installed_;   // declared after seqs_: removed before the Seqs they point to go

    // The current graph's reduction.
    ggml_tensor * base_ = nullptr;      // the [n_vocab, n_rows] logits the rows view
    ggml_tensor * result_ = nullptr;    // [1 + n_gather, n_rows]
    ggml_tensor * indices_ = nullptr;   // [n_gather, n_rows] i32, an input
    std::vector<int32_t> host_indices_;
    bool broken_ = false;   // a graph row found no queued gather list
};

}  // namespace selftune
