// Dropout on the LoRA input (PEFT places it there): mask(slot, row, col) is a pure function
// of `key` (rng.h), so the backward regenerates the forward's mask instead of storing it,
// and every backend draws the same mask: keep = key.with(slot).uniform(row * n_in + col) >= p.
#pragma once

#include "train/rng.h"

namespace selftune::train {

struct DropoutSpec {
    float p = 0.0f;   // 0: off (evaluation, or dropout disabled)
    RngKey key{0};
};

}  // namespace selftune::train
