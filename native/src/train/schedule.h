// Learning-rate schedule: linear warm-up, then cosine or linear decay (or constant).
//
// Step s (0-based optimizer update):
//   s < warmup:   lr * (s + 1) / warmup
//   afterwards:   p = (s - warmup) / max(1, total - warmup)  in [0, 1)
//     cosine:     min + (lr - min) * 0.5 * (1 + cos(pi p))
//     linear:     min + (lr - min) * (1 - p)
//     constant:   lr
// with min = lr * min_lr_ratio. The first update already uses a non-zero rate.
#pragma once

#include <cstdint>
#include <string>

namespace selftune::train {

enum class DecayKind { cosine, linear, constant };

struct Schedule {
    float lr = 2e-4f;
    float min_lr_ratio = 0.0f;
    int64_t warmup_steps = 0;
    int64_t total_steps = 1;
    DecayKind decay = DecayKind::cosine;
};

float lr_at(const Schedule & s, int64_t step);
bool decay_kind_from_name(const std::string & name, DecayKind & out);
const char * decay_kind_name(DecayKind k);

}  // namespace selftune::train
