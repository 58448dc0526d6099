// Cross-entropy of one row of logits z[V] against a target id:
//   loss = logsumexp(z) - z[target]          (= -log softmax(z)[target])
//   dz   = scale * (softmax(z) - onehot(target))
// One pass of exponentials, kept in dz for the gradient. Their sum is accumulated in
// double: with 150k-token vocabularies a float sum loses the small terms the gradient is
// made of. float uses fast_expf (vectorized); double (the gradient checks) uses std::exp.
#pragma once

#include "train/cpu/ops/fast_exp.h"

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace selftune::train::ops {

template <typename T>
inline T exp_of(T x) {
    if constexpr (std::is_same_v<T, float>) return fast_expf(x);
    else return std::exp(x);
}

// Returns the loss. dz (may alias z) receives the scaled gradient when non-null; `tmp` is
// scratch for the exponentials when dz is null.
template <typename T>
double cross_entropy(T * dz, const T * z, int64_t V, int32_t target, T scale, std::vector<T> * tmp = nullptr) {
    T m = z[0];
    for (int64_t v = 1; v < V; v++) m = z[v] > m ? z[v] : m;
    const T zt = z[target];
    std::vector<T> local;
    T * e = dz;
    if (!e) {
        if (!tmp) tmp = &local;
        tmp->resize((size_t) V);
        e = tmp->data();
    }
    for (int64_t v = 0; v < V; v++) e[v] = exp_of<T>(z[v] - m);
    // 8 independent partial sums per 256-element block: vectorizable and deterministic.
    double sum = 0;
    int64_t v = 0;
    for (; v + 256 <= V; v += 256) {
        T lanes[8] = {};
        for (int64_t k = 0; k < 256; k += 8) {
            for (int l = 0; l < 8; l++) lanes[l] += e[v + k + l];
        }
        for (int l = 0; l < 8; l++) sum += (double) lanes[l];
    }
    for (; v < V; v++) sum += (double) e[v];
    const double loss = (double) m + std::log(sum) - (double) zt;
    if (dz) {
        const T f = (T) ((double) scale / sum);
        for (int64_t k = 0; k < V; k++) dz[k] *= f;
        dz[target] -= scale;
    }
    return loss;
}

}  // namespace selftune::train::ops
