// Cross-entropy of one row of logits z[V] against a target id:
//   loss = logsumexp(z) - z[target]          (= -log softmax(z)[target])
//   dz   = scale * (softmax(z) - onehot(target))
// The sum of exponentials is accumulated in double: with 150k-token vocabularies a float
// sum loses the small terms the gradient is made of.
#pragma once

#include <cmath>
#include <cstdint>

namespace selftune::train::ops {

template <typename T>
double logsumexp(const T * z, int64_t V) {
    T m = z[0];
    for (int64_t v = 1; v < V; v++) m = z[v] > m ? z[v] : m;
    double s = 0;
    for (int64_t v = 0; v < V; v++) s += std::exp((double) (z[v] - m));
    return (double) m + std::log(s);
}

// Returns the loss; writes dz when dz != null (dz may alias z).
template <typename T>
double cross_entropy(T * dz, const T * z, int64_t V, int32_t target, T scale) {
    const double lse = logsumexp(z, V);
    const double loss = lse - (double) z[target];
    if (dz) {
        for (int64_t v = 0; v < V; v++) dz[v] = scale * (T) std::exp((double) z[v] - lse);
        dz[target] -= scale;
    }
    return loss;
}

}  // namespace selftune::train::ops
