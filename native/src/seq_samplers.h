// Sampler chains installed on a context's sequences for the length of one job.
//
// llama.cpp runs a sequence's sampler chain inside the decode graph (backend sampling,
// llama_set_sampler) when every member has a backend implementation; it then copies only
// what the chain outputs instead of the sequence's vocabulary-sized logit rows. Jobs that
// need little from each row use it: the generator's device-side greedy choice, the
// scorer's in-graph log-softmax (score_head.h). Installing or removing chains makes
// llama.cpp re-plan its graphs at the next decode (milliseconds), so a job installs once.
#pragma once

#include "llama.h"

#include <napi.h>

#include <string>
#include <vector>

namespace selftune {

class Session;

// Where a job reduces each logit row: in the decode graph (graph_head.h) or on the host
// from the copied row. Which wins depends on the job; each documents its `automatic`.
enum class ReduceOn { automatic, graph, host };

// `automatic` resolves to the graph when the logits live on a GPU (on an H100, 1.5b q4_k:
// greedy generation 14.2k against 11.0k tokens/s at 255 sequences, scoring 23.5k against
// 19.5k; native/bench/RESULTS.md); on the CPU backend our vectorised host loops beat
// ggml's generic ops.
bool reduce_in_graph(ReduceOn where, const Session & session);

// Reads "auto" | "graph" | "host" (undefined: automatic); throws a JS TypeError naming `what`.
ReduceOn reduce_on_from_js(const Napi::Value & v, const std::string & what);

class SeqSamplers {
  public:
    explicit SeqSamplers(llama_context * ctx) : ctx_(ctx) {}
    // Removes and frees every chain: later decodes copy raw logits again.
    ~SeqSamplers();
    SeqSamplers(const SeqSamplers &) = delete;
    SeqSamplers & operator=(const SeqSamplers &) = delete;

    // Installs a chain holding `member` (owned from here on) on `seq`. Throws
    // std::runtime_error if llama.cpp cannot run it in the graph.
    void install(llama_seq_id seq, llama_sampler * member);

  private:
    llama_context * ctx_;
    std::vector<std::pair<llama_seq_id, llama_sampler *>> chains_;
};

}  // namespace selftune
