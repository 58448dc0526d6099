// DPO's reference: each example's summed target log-probs under the frozen starting policy,
// computed once by the training engine's own forward, before training moves the policy.
// Not llama.cpp's scorer: its f16 KV cache would make the step-0 rewards non-zero.
#pragma once

#include "train/backend.h"
#include "train/data_plan.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace selftune::train {

struct ReferenceOptions {
    bool use_lora = true;       // the session's adapter (DPO after SFT); false: the bare base (DPO-only)
    int32_t micro_batch = 8;    // sequences per forward; the sums do not depend on it on the CPU
    int32_t max_length = 1024;  // must be training's maxLength: both score the same cut sequences
};

// sums[e] for every example e, summed by sequence_logp_sums (objective.h) so that a policy
// equal to the reference reproduces them bit for bit. No dropout. `between` runs before
// each micro-batch (cancellation: it may throw).
std::vector<double> reference_logp_sums(Backend & backend, const Dataset & data, const ReferenceOptions & options,
                                        const std::function<void()> & between = nullptr);

}  // namespace selftune::train
