#include "train/data_plan.h"

#include "train/rng.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace selftune::train {

uint64_t Dataset::fingerprint() const {
    uint64_t h = mix64(0x44617461);   // "Data"
    h = hash_combine(h, (uint64_t) size());
    for (int64_t o : offsets) h = hash_combine(h, (uint64_t) o);
    for (size_t i = 0; i < tokens.size(); i++) h = hash_combine(h, ((uint64_t) (uint32_t) tokens[i] << 1) | loss[i]);
    return h;
}

DataPlan::DataPlan(const Dataset & data, const PlanConfig & config) : data_(data), config_(config) {
    if (data.size() < 1) throw std::invalid_argument("training data is empty");
    if (data.loss.size() != data.tokens.size() || data.offsets.front() != 0 ||
        data.offsets.back() != (int64_t) data.tokens.size()) {
        throw std::invalid_argument("training data: tokens, loss mask and offsets disagree");
    }
    if (config.epochs < 1 || config.micro_batch < 1 || config.grad_accum < 1 || config.bucket_window < 1 ||
        config.max_length < 2) {
        throw std::invalid_argument("training plan: epochs, microBatch, gradAccum, bucketWindow must be >= 1, maxLength >= 2");
    }
    for (int64_t i = 0; i < data.size(); i++) {
        if (data.length(i) < 1) throw std::invalid_argument("training data: example " + std::to_string(i) + " is empty");
        if (data.length(i) > config.max_length) n_truncated_++;
    }
    if (config.pairs && data.size() % 2 != 0) {
        throw std::invalid_argument("preference data must hold pairs (chosen 2i, rejected 2i+1): odd example count " +
                                    std::to_string(data.size()));
    }
    const int64_t eff = (int64_t) config.micro_batch * config.grad_accum;
    steps_per_epoch_ = (n_units() + eff - 1) / eff;
}

int64_t DataPlan::unit_length(int64_t u) const {
    auto len = [&](int64_t e) { return std::min<int64_t>(data_.length(e), config_.max_length); };
    // A pair is padded to its longer member, so that is what bucketing should group by.
    return config_.pairs ? std::max(len(2 * u), len(2 * u + 1)) : len(u);
}

std::vector<int64_t> DataPlan::epoch_steps_order(int32_t epoch, std::vector<int64_t> & step_start) const {
    const int64_t n = n_units();
    const int64_t eff = (int64_t) config_.micro_batch * config_.grad_accum;
    const RngKey key = RngKey(config_.seed).with(kStreamShuffle).with((uint64_t) epoch);
    std::vector<int64_t> perm((size_t) n);
    std::iota(perm.begin(), perm.end(), 0);
    // Fisher-Yates with counter-based draws.
    for (int64_t i = n - 1; i > 0; i--) std::swap(perm[(size_t) i], perm[(size_t) (key.bits((uint64_t) i) % (uint64_t) (i + 1))]);

    auto len = [&](int64_t u) { return unit_length(u); };
    std::vector<int64_t> order;
    order.reserve((size_t) n);
    step_start.clear();
    const int64_t window = eff * config_.bucket_window;
    for (int64_t w0 = 0, wi = 0; w0 < n; w0 += window, wi++) {
        const int64_t w1 = std::min(n, w0 + window);
        std::vector<int64_t> win(perm.begin() + w0, perm.begin() + w1);
        if (config_.bucket_window > 1) {
            std::stable_sort(win.begin(), win.end(), [&](int64_t a, int64_t b) { return len(a) < len(b); });
        }
        // Steps of this window, then their order shuffled.
        std::vector<std::pair<int64_t, int64_t>> steps;
        for (int64_t s0 = 0; s0 < (int64_t) win.size(); s0 += eff) steps.push_back({s0, std::min<int64_t>((int64_t) win.size(), s0 + eff)});
        const RngKey wkey = key.with(0x57696e64).with((uint64_t) wi);   // "Wind"
        for (int64_t i = (int64_t) steps.size() - 1; i > 0; i--) {
            std::swap(steps[(size_t) i], steps[(size_t) (wkey.bits((uint64_t) i) % (uint64_t) (i + 1))]);
        }
        for (const auto & s : steps) {
            step_start.push_back((int64_t) order.size());
            order.insert(order.end(), win.begin() + s.first, win.begin() + s.second);
        }
    }
    step_start.push_back((int64_t) order.size());
    return order;
}

std::vector<std::vector<int64_t>> DataPlan::step_batches(int64_t step) const {
    if (step < 0 || step >= total_steps()) throw std::out_of_range("training step out of range");
    const int32_t epoch = epoch_of(step);
    if (epoch != cached_epoch_) {
        cached_order_ = epoch_steps_order(epoch, cached_step_start_);
        cached_epoch_ = epoch;
    }
    const int64_t k = step % steps_per_epoch_;
    std::vector<int64_t> ex(cached_order_.begin() + cached_step_start_[(size_t) k],
                            cached_order_.begin() + cached_step_start_[(size_t) k + 1]);
    std::stable_sort(ex.begin(), ex.end(), [&](int64_t a, int64_t b) { return unit_length(a) < unit_length(b); });
    std::vector<std::vector<int64_t>> out;
    for (size_t i = 0; i < ex.size(); i += (size_t) config_.micro_batch) {
        const size_t end = std::min(ex.size(), i + (size_t) config_.micro_batch);
        if (!config_.pairs) {
            out.emplace_back(ex.begin() + (int64_t) i, ex.begin() + (int64_t) end);
            continue;
        }
        std::vector<int64_t> mb;
        for (size_t k = i; k < end; k++) {
            mb.push_back(2 * ex[k]);
            mb.push_back(2 * ex[k] + 1);
        }
        out.push_back(std::move(mb));
    }
    return out;
}

MicroBatch DataPlan::make_micro_batch(const std::vector<int64_t> & examples) const {
    MicroBatch b;
    b.n_seq = (int32_t) examples.size();
    b.examples = examples;
    for (int64_t e : examples) b.seq_len = std::max<int32_t>(b.seq_len, (int32_t) std::min<int64_t>(data_.length(e), config_.max_length));
    b.tokens.assign((size_t) b.n_seq * b.seq_len, config_.pad_id);
    b.loss.assign((size_t) b.n_seq * b.seq_len, 0);
    for (int32_t s = 0; s < b.n_seq; s++) {
        const int64_t e = examples[(size_t) s];
        const int32_t L = (int32_t) std::min<int64_t>(data_.length(e), config_.max_length);
        const int64_t o = data_.offsets[(size_t) e];
        std::copy_n(data_.tokens.begin() + o, L, b.tokens.begin() + (int64_t) s * b.seq_len);
        std::copy_n(data_.loss.begin() + o, L, b.loss.begin() + (int64_t) s * b.seq_len);
        b.loss[(size_t) s * b.seq_len] = 0;   // nothing predicts the first token
        b.length.push_back(L);
    }
    return b;
}

}  // namespace selftune::train
