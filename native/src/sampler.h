// Per-sequence token choice and stop-string matching for the generator.
//
// SequenceSampler: one per running request, seeded per request, so what a request
// produces depends only on its own logits and seed, never on which other requests share
// its decode steps. Greedy (temperature 0) is a plain argmax. With top-k, llama.cpp's
// sampler chain (top-k -> top-p -> min-p -> temperature -> dist): top-k leaves it few
// candidates. Without, the same stages fused into sweeps over the row (sampler.cpp): the
// top-p set found from a histogram of probability mass, min-p as a logit floor, and a draw
// weighted at the temperature, never sorting the vocabulary, which llama.cpp's top-p does
// whenever its top 256 tokens do not reach p (19 ms a token on a 150k vocabulary).
//
// The repetition penalty is applied by us, before the chain, with llama.cpp's formula
// (logit / p when positive, logit * p otherwise). llama.cpp's penalties sampler would
// look up every vocabulary entry in a hash map each token (150k lookups on Qwen); ours
// touches only the tokens in the window. Its window holds generated tokens only: a
// few-shot prompt repeats its delimiters by design and must not push them down.
#pragma once

#include "llama.h"

#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace selftune {

struct SamplingParams {
    float    temperature = 0.0f;        // 0: greedy (argmax)
    int32_t  top_k = 0;                 // 0: off
    float    top_p = 1.0f;              // 1: off
    float    min_p = 0.0f;              // 0: off
    float    repetition_penalty = 1.0f; // 1: off
    int32_t  repetition_window = 64;    // generated tokens the penalty looks back over
    uint32_t seed = 0;
    bool     seed_set = false;          // false: derived from the call's seed and the index
    int32_t  max_tokens = 256;
    std::vector<std::string> stop;      // stop strings, matched on the detokenized text
};

// Working memory for one sampling thread (a vocabulary-sized candidate array), shared by
// the sequences that thread samples for instead of one per sequence (1.8 MB each on Qwen).
struct SamplerScratch {
    std::vector<llama_token_data> cur;
    std::vector<float> row;
    // the fused path (sampler.cpp)
    std::vector<float> w, cut, sample_w;
    std::vector<double> blocks;
};

class SequenceSampler {
  public:
    SequenceSampler(const SamplingParams & params, uint32_t seed, int32_t n_vocab);
    ~SequenceSampler();
    SequenceSampler(const SequenceSampler &) = delete;
    SequenceSampler & operator=(const SequenceSampler &) = delete;

    // Chooses the next token from one row of logits and records it in the penalty
    // window. Touches only this sampler and `scratch`: different sequences may sample
    // on different threads at once.
    llama_token sample(const float * logits, SamplerScratch & scratch);

  private:
    void accept(llama_token token);
    template <typename Adjust> void penalize(Adjust adjust) const;

    int32_t n_vocab_;
    float penalty_;
    int32_t window_size_;
    llama_sampler * chain_ = nullptr;   // with top-k
    bool own_ = false;                  // the fused path
    float top_p_ = 1.0f, min_p_ = 0.0f, inv_temp_ = 1.0f;
    std::mt19937 rng_;
    std::deque<llama_token> window_;
    std::vector<std::pair<llama_token, int32_t>> counts_;   // distinct tokens in the window
};

// The logit at which the row x[0..n) (largest value `top`) is cut to its top-p set: the
// tokens with x >= the returned value are the fewest highest ones whose softmax
// probability sums to at least top_p (plus any tied with the last). Exposed for
// bench:sampler, which holds it to a full sort.
float top_p_threshold(const float * x, size_t n, float top, float top_p, SamplerScratch & scratch);

// Finds stop strings in text that grows a piece at a time. Only the tail that could hold
// a match ending in the new piece is searched, so the cost per token is the piece plus
// the longest stop string, whatever the length of the text.
class StopMatcher {
  public:
    explicit StopMatcher(const std::vector<std::string> & stops);

    // `text` has just grown from `old_size` bytes. Returns the index of the stop string
    // whose match starts earliest (ties: the first listed), setting `at` to where it
    // starts; -1 when none matched.
    int32_t find(const std::string & text, size_t old_size, size_t & at) const;

  private:
    const std::vector<std::string> & stops_;
    size_t longest_ = 0;
};

// `s` with invalid UTF-8 (e.g. a character cut by the token limit) replaced by U+FFFD,
// so JS always receives the same well-formed string whatever the runtime does.
std::string sanitize_utf8(const std::string & s);

// Seed of request `index` when it sets none: a hash of the call's seed and the index, so
// N requests with one prompt give N different samples, reproducibly. Never
// LLAMA_DEFAULT_SEED (which llama.cpp reads as "random").
uint32_t derive_seed(uint32_t base, uint32_t index);

}  // namespace selftune
