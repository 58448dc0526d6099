// Log-sum-exp over a row of logits, the denominator of log-softmax:
//   log p(t) = logits[t] - log_sum_exp(logits)
//
// Stable (the max is subtracted before exponentiating) and written so the compiler can
// vectorise it: a scoring job computes this over the full vocabulary (~150k) for every
// continuation token, which would otherwise cost more than the forward pass.
#pragma once

#include <cstddef>

namespace selftune {

double log_sum_exp(const float * x, size_t n);

}  // namespace selftune
