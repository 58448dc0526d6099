// Gradient checks: every op's backward and the whole model's LoRA gradient against central
// finite differences, in double precision; and the blocked float kernels against their
// plain references. Exposed to the test suite through the addon (trainSelfCheck).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace selftune::train {

struct CheckResult {
    std::string name;
    double max_abs_err = 0;   // max |analytic - numeric|
    double max_rel_err = 0;   // max |a - n| / max(|a|, |n|, floor)
    int64_t n_checked = 0;
    double tolerance = 0;     // on max_rel_err
    bool passed = false;
};

// Each op (matmul x/w, rmsnorm x/w, rope norm/neox, attention q/k/v with GQA and causal
// mask, swiglu, embedding, cross-entropy, LoRA linear with dropout).
std::vector<CheckResult> check_ops(uint64_t seed);

// The whole model with LoRA on every target: random tiny llama (norm RoPE, untied output)
// and qwen2 (neox RoPE, biases, tied output) configurations, two sequences of different
// length, a partial loss mask, dropout on and off.
std::vector<CheckResult> check_model(uint64_t seed);

// Blocked float matmul kernels vs the double references on awkward shapes (tails in every
// dimension), and thread-count independence (bit-identical with 1 and n threads).
std::vector<CheckResult> check_kernels(uint64_t seed, int n_threads);

}  // namespace selftune::train
