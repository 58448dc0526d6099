#include "train/objective.h"

#include "train/rng.h"

#include <stdexcept>

namespace selftune::train {

uint64_t TokenMeanCrossEntropy::fingerprint() const {
    return mix64(0x53465443);   // "SFTC"
}

bool TokenMeanCrossEntropy::begin_step(const std::vector<MicroBatch> & step) {
    step_targets_ = 0;
    for (const MicroBatch & mb : step) step_targets_ += mb.n_loss();
    return step_targets_ > 0;
}

double TokenMeanCrossEntropy::micro_loss(size_t, const MicroBatch &, const std::vector<double> & logp,
                                         std::vector<double> & weight) {
    if (step_targets_ <= 0) throw std::logic_error("micro_loss before begin_step");
    // In float, as the gradient scale always was: the weight the backends receive is the
    // float 1/T, so results do not move with this refactoring.
    const double w = -(double) (1.0f / (float) step_targets_);
    double sum = 0;
    weight.assign(logp.size(), w);
    for (double lp : logp) sum -= lp;
    return sum / (double) step_targets_;
}

}  // namespace selftune::train
