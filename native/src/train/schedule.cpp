#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace selftune::train {

float lr_at(const Schedule & s, int64_t step) {
    if (step < s.warmup_steps) return s.lr * (float) (step + 1) / (float) s.warmup_steps;
    if (s.decay == DecayKind::constant) return s.lr;
    const double p = (double) (step - s.warmup_steps) / (double) std::max<int64_t>(1, s.total_steps - s.warmup_steps);
    const double lo = (double) s.lr * (double) s.min_lr_ratio;
    const double f = s.decay == DecayKind::cosine ? 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, p))) : 1.0 - std::min(1.0, p);
    return (float) (lo + ((double) s.lr - lo) * f);
}

bool decay_kind_from_name(const std::string & name, DecayKind & out) {
    if (name == "cosine") out = DecayKind::cosine;
    else if (name == "linear") out = DecayKind::linear;
    else if (name == "constant") out = DecayKind::constant;
    else return false;
    return true;
}

const char * decay_kind_name(DecayKind k) {
    switch (k) {
        case DecayKind::cosine: return "cosine";
        case DecayKind::linear: return "linear";
        default: return "constant";
    }
}

}  // namespace selftune::train
