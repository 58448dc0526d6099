// Cross-entropy of one row of logits z[V] against a target id:
//   loss = logsumexp(z) - z[target]          (= -log softmax(z)[target])
//   dz   = scale * (softmax(z) - onehot(target))
// One pass of exponentials, kept in dz for the gradient. Their sum is accumulated in
// double: with 150k-token vocabularies a float sum loses the small terms the gradient is
// made of. float runs on SIMD vectors with fast_expf (deterministic: fixed lanes and
// blocks); double (the gradient checks) is plain loops with std::exp.
#pragma once

#include "train/cpu/ops/fast_exp.h"
#include "train/cpu/ops/matmul.h"   // Simd

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace selftune::train::ops {

// Returns the loss. dz (may alias z) receives the scaled gradient when non-null; `tmp` is
// scratch for the exponentials when dz is null.
template <typename T>
double cross_entropy(T * dz, const T * z, int64_t V, int32_t target, T scale, std::vector<T> * tmp = nullptr) {
    const T zt = z[target];
    std::vector<T> local;
    T * e = dz;
    if (!e) {
        if (!tmp) tmp = &local;
        tmp->resize((size_t) V);
        e = tmp->data();
    }
    T m = z[0];
    double sum = 0;
    if constexpr (std::is_same_v<T, float>) {
        using S = Simd<float>;
        using VF = S::V;
        typedef int32_t VI __attribute__((vector_size(kVecBytes)));
        constexpr int W = S::kWidth;
        int64_t v = 0;
        VF mv = VF{} + z[0];
        for (; v + W <= V; v += W) {
            const VF x = S::load(z + v);
            mv = x > mv ? x : mv;
        }
        float lanes[W];
        S::store(lanes, mv);
        for (int l = 0; l < W; l++) m = lanes[l] > m ? lanes[l] : m;
        for (; v < V; v++) m = z[v] > m ? z[v] : m;
        // Exponentials, summed in float per 1024-element block (exact enough: values <= 1),
        // blocks summed in double.
        v = 0;
        for (; v + 1024 <= V; v += 1024) {
            VF acc = {};
            for (int64_t k = v; k < v + 1024; k += W) {
                const VF ex = fast_expf_v<VF, VI>(S::load(z + k) - m);
                S::store(e + k, ex);
                acc += ex;
            }
            S::store(lanes, acc);
            for (int l = 0; l < W; l++) sum += (double) lanes[l];
        }
        for (; v < V; v++) {
            e[v] = fast_expf(z[v] - m);
            sum += (double) e[v];
        }
    } else {
        for (int64_t v = 1; v < V; v++) m = z[v] > m ? z[v] : m;
        for (int64_t v = 0; v < V; v++) {
            e[v] = std::exp(z[v] - m);
            sum += (double) e[v];
        }
    }
    const double loss = (double) m + std::log(sum) - (double) zt;
    if (dz) {
        const T f = (T) ((double) scale / sum);
        for (int64_t k = 0; k < V; k++) dz[k] *= f;
        dz[target] -= scale;
    }
    return loss;
}

}  // namespace selftune::train::ops
