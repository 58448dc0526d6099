#include "log_softmax.h"

#include "vec_math.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace selftune {

using namespace vec;

double log_sum_exp(const float * x, size_t n) {
    if (n == 0) return -INFINITY;

    const float m = max_of(x, n);
    if (!std::isfinite(m)) return m;   // all -inf, or an inf logit: propagate

    // Blocks bound the float accumulation error; each block's lanes go into a double.
    const size_t block = 4096;
    const v8f vm = splat(m);
    double total = 0.0;
    size_t i = 0;
    while (n - i >= (size_t) kLanes) {
        size_t len = (n - i) / kLanes * kLanes;
        if (len > block) len = block;
        const size_t end = i + len;
        // Four independent chains: each exp is a long dependent polynomial, and one
        // accumulator would leave the FMA units waiting on it.
        v8f acc0 = splat(0.0f), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (; i + 4 * kLanes <= end; i += 4 * kLanes) {
            acc0 += exp_nonpos(load(x + i) - vm);
            acc1 += exp_nonpos(load(x + i + kLanes) - vm);
            acc2 += exp_nonpos(load(x + i + 2 * kLanes) - vm);
            acc3 += exp_nonpos(load(x + i + 3 * kLanes) - vm);
        }
        for (; i < end; i += kLanes) acc0 += exp_nonpos(load(x + i) - vm);
        const v8f acc = (acc0 + acc1) + (acc2 + acc3);
        for (int j = 0; j < kLanes; j++) total += acc[j];
    }
    for (; i < n; i++) total += exp_nonpos(x[i] - m);
    return (double) m + std::log(total);
}

}  // namespace selftune
