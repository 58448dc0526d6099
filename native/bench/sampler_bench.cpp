// bench:sampler — the generator's host sampler on vocabulary-sized rows, side by side with
// llama.cpp's own samplers on the same rows. As in llm.c's dev/cuda files: a plain
// reference, the versions, a check of each against the reference, then timings.
//
// Rows are 151,936 logits (Qwen's vocabulary) drawn from N(0, sigma^2): sigma 1 is the
// flat row of a random-weight model (top-p 0.9 keeps most of the vocabulary), sigma 4 a
// peaked one (a few hundred tokens). Built and run by `bun run bench:sampler`.
//
// 1. The top-p set. Reference: a full sort and a running softmax sum in double. Ours:
//    top_p_threshold (sampler.cpp). llama.cpp: llama_sampler_init_top_p. Check: ours keeps
//    as many tokens as the reference, or one more or fewer where the reference's running
//    sum passes p within 1e-6 of it (ours sums floats); llama.cpp's count is shown beside.
// 2. A whole draw, top-p 0.9 -> temperature 0.7 -> sample: our SequenceSampler (the fused
//    path) against llama.cpp's chain top-p -> temp -> dist, as it runs for a request
//    without a repetition penalty.
#include "sampler.h"

#include "llama.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

using namespace selftune;

namespace {

constexpr int kVocab = 151936;
constexpr int kRows = 16;

double now_ms() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::vector<float>> make_rows(float sigma, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.0f, sigma);
    std::vector<std::vector<float>> rows(kRows, std::vector<float>(kVocab));
    for (auto & r : rows) {
        for (auto & x : r) x = nd(g);
    }
    return rows;
}

// The plain way: sort by logit, add probabilities until p is reached. `cum[k]` is the
// probability of the top k tokens, for k up to the answer.
size_t reference_top_p(const std::vector<float> & x, float p, std::vector<double> * cum = nullptr) {
    std::vector<int> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return x[a] > x[b]; });
    const double top = x[idx[0]];
    double z = 0.0;
    for (float v : x) z += std::exp((double) v - top);
    double run = 0.0;
    size_t k = 0;
    if (cum) cum->assign(1, 0.0);
    while (k < idx.size() && run < p * z) {
        run += std::exp((double) x[idx[k++]] - top);
        if (cum) cum->push_back(run / z);
    }
    return k;
}

size_t ours_top_p(const std::vector<float> & x, float p, SamplerScratch & s) {
    const float top = *std::max_element(x.begin(), x.end());
    const float cut = top_p_threshold(x.data(), x.size(), top, p, s);
    return (size_t) std::count_if(x.begin(), x.end(), [&](float v) { return v >= cut; });
}

size_t llama_top_p(const std::vector<float> & x, float p, std::vector<llama_token_data> & cur) {
    cur.resize(x.size());
    for (size_t i = 0; i < x.size(); i++) cur[i] = llama_token_data{(llama_token) i, x[i], 0.0f};
    llama_token_data_array arr = {cur.data(), cur.size(), -1, false};
    llama_sampler * tp = llama_sampler_init_top_p(p, 1);
    llama_sampler_apply(tp, &arr);
    llama_sampler_free(tp);
    return arr.size;
}

template <typename F>
double ms_per_row(const std::vector<std::vector<float>> & rows, F f) {
    f(rows[0]);   // warm-up: scratch allocation, page faults
    const double t0 = now_ms();
    for (const auto & r : rows) f(r);
    return (now_ms() - t0) / (double) rows.size();
}

}  // namespace

int main() {
    llama_backend_init();
    const double row_gb = kVocab * sizeof(float) / 1e9;
    int failures = 0;
    std::printf("rows of %d logits, %d per case, one thread\n", kVocab, kRows);
    for (float sigma : {1.0f, 4.0f}) {
        const auto rows = make_rows(sigma, 7);
        SamplerScratch s;
        std::vector<llama_token_data> cur;
        std::printf("\nsigma %.0f\n", sigma);
        for (float p : {0.5f, 0.9f, 0.95f}) {
            size_t max_ours = 0, max_llama = 0, kept = 0;
            bool ok = true;
            std::vector<double> cum;
            for (const auto & r : rows) {
                const size_t ref = reference_top_p(r, p, &cum), ours = ours_top_p(r, p, s), ll = llama_top_p(r, p, cur);
                const size_t d_ours = ours > ref ? ours - ref : ref - ours, d_llama = ll > ref ? ll - ref : ref - ll;
                // One token off is rounding only if the running sum at the smaller count is
                // within 1e-6 of p (the reference says just under or over, ours the other).
                const size_t lo = std::min(ours, ref);
                ok = ok && (d_ours == 0 || (d_ours == 1 && std::abs(cum[lo] - p) < 1e-6));
                max_ours = std::max(max_ours, d_ours);
                max_llama = std::max(max_llama, d_llama);
                kept += ref;
            }
            failures += ok ? 0 : 1;
            const double t_ref = ms_per_row(rows, [&](const std::vector<float> & r) { reference_top_p(r, p); });
            const double t_ours = ms_per_row(rows, [&](const std::vector<float> & r) { ours_top_p(r, p, s); });
            const double t_llama = ms_per_row(rows, [&](const std::vector<float> & r) { llama_top_p(r, p, cur); });
            std::printf("  top-p %.2f: keeps %6zu tokens | off the reference by: ours %zu, llama.cpp %zu %s\n", p,
                        kept / rows.size(), max_ours, max_llama, ok ? "" : "  <-- MISMATCH");
            std::printf("    ms/row: reference sort %.2f | llama.cpp %.2f | ours %.3f (%.1f GB/s of logits)  -> %.1fx llama.cpp\n",
                        t_ref, t_llama, t_ours, row_gb / (t_ours / 1e3), t_llama / t_ours);
        }
        // A whole draw, as the generator runs it for one request.
        SamplingParams sp;
        sp.temperature = 0.7f;
        sp.top_p = 0.9f;
        SequenceSampler ours(sp, 1, kVocab);
        llama_sampler_chain_params cp = llama_sampler_chain_default_params();
        cp.no_perf = true;
        llama_sampler * chain = llama_sampler_chain_init(cp);
        llama_sampler_chain_add(chain, llama_sampler_init_top_p(0.9f, 1));
        llama_sampler_chain_add(chain, llama_sampler_init_temp(0.7f));
        llama_sampler_chain_add(chain, llama_sampler_init_dist(1));
        const double t_ours = ms_per_row(rows, [&](const std::vector<float> & r) { ours.sample(r.data(), s); });
        const double t_llama = ms_per_row(rows, [&](const std::vector<float> & r) {
            cur.resize(r.size());
            for (size_t i = 0; i < r.size(); i++) cur[i] = llama_token_data{(llama_token) i, r[i], 0.0f};
            llama_token_data_array arr = {cur.data(), cur.size(), -1, false};
            llama_sampler_apply(chain, &arr);
        });
        llama_sampler_free(chain);
        std::printf("  draw (top-p 0.9, temperature 0.7): llama.cpp chain %.2f ms/row | ours %.3f ms/row  -> %.1fx\n", t_llama,
                    t_ours, t_llama / t_ours);
    }
    llama_backend_free();
    std::printf("\n%s\n", failures == 0 ? "all top-p sets match the reference" : "TOP-P SETS DIFFER FROM THE REFERENCE");
    return failures == 0 ? 0 : 1;
}
