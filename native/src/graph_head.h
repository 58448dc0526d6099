// A reduction of the decode graph's logit rows, computed on the model's device over all
// rows at once, of which each row hands back only a few values.
//
// Jobs that need little from a vocabulary-sized row (the scorer: a log-softmax and a few
// gathered logits; the generator's greedy steps: an argmax) would otherwise have llama.cpp
// copy every row to the host: 600 KB a row on Qwen, 150 MB a step at 255 sequences.
//
// The hook is llama.cpp's backend sampling (seq_samplers.h): a chain per work sequence,
// our sampler its only member. llama.cpp calls the sampler once per output row while it
// builds a graph, with that row as a view of the graph's [n_vocab, n_rows] logits; then it
// copies whatever tensor the call hands back instead of the raw row. llama.cpp's own
// samplers build their ops per row (an argmax kernel per row, each one block wide); a
// GraphHead builds one op over all rows at the first call of a graph and hands each row
// a view of its part.
#pragma once

#include "seq_samplers.h"

#include "llama.h"

#include <cstdint>
#include <memory>
#include <vector>

struct ggml_context;
struct ggml_tensor;

namespace selftune {

class GraphHead {
  public:
    virtual ~GraphHead() = default;
    GraphHead(const GraphHead &) = delete;
    GraphHead & operator=(const GraphHead &) = delete;

    struct Seq {
        GraphHead * head;
        llama_seq_id id;
        std::vector<int32_t> rows;   // this sequence's rows in the current graph, in order
    };

    // llama.cpp's side, for the sampler callbacks (graph_head.cpp).
    void on_reset(Seq & seq);
    void on_apply(ggml_context * ctx, Seq & seq, llama_sampler_data * data);
    void on_set_input(Seq & seq) { set_input(seq); }

  protected:
    explicit GraphHead(llama_context * ctx) : installed_(ctx) {}
    // Installs the head on `seqs`; the derived constructor calls it last.
    void install(const std::vector<llama_seq_id> & seqs);

    // Builds the reduction over `logits`: [n_vocab, n_rows] f32, contiguous.
    virtual void build(ggml_context * ctx, ggml_tensor * logits) = 0;
    // Sets what llama.cpp copies back for output row `row` (data->logits or data->sampled;
    // data->logits arrives as the raw row and must not stay that).
    virtual void output(ggml_context * ctx, int32_t row, llama_sampler_data * data) = 0;
    // Before the graph runs, for each sequence that has rows in it.
    virtual void set_input(Seq &) {}

    std::vector<std::unique_ptr<Seq>> seqs_;

  private:
    ggml_tensor * base_ = nullptr;   // the logits the current graph's reduction reads
    SeqSamplers installed_;          // destroyed first: no callback outlives the Seqs
};

// Greedy picks for the generator: one argmax over all rows, one token id per row back.
class GreedyHead : public GraphHead {
  public:
    GreedyHead(llama_context * ctx, const std::vector<llama_seq_id> & seqs);
    // After the decode: the token picked for the output at batch index i.
    static llama_token token(llama_context * ctx, int32_t batch_index);

  private:
    void build(ggml_context * ctx, ggml_tensor * logits) override;
    void output(ggml_context * ctx, int32_t row, llama_sampler_data * data) override;
    ggml_tensor * picks_ = nullptr;   // [n_rows] i32
};

}  // namespace selftune
