#include "train/reference.h"

#include "train/objective.h"

#include <algorithm>

namespace selftune::train {

std::vector<double> reference_logp_sums(Backend & backend, const Dataset & data, const ReferenceOptions & o,
                                        const std::function<void()> & between) {
    PlanConfig pc;
    pc.epochs = 1;
    pc.micro_batch = o.micro_batch;
    pc.grad_accum = 1;
    pc.max_length = o.max_length;
    const DataPlan plan(data, pc);   // validates the data; only its micro-batch builder is used
    const int64_t n = data.size();
    std::vector<double> sums((size_t) n, 0.0), logp;
    ForwardOptions fo;
    fo.use_lora = o.use_lora;
    for (int64_t e0 = 0; e0 < n; e0 += o.micro_batch) {
        if (between) between();
        std::vector<int64_t> idx;
        for (int64_t e = e0; e < std::min(n, e0 + o.micro_batch); e++) idx.push_back(e);
        const MicroBatch mb = plan.make_micro_batch(idx);
        backend.forward(mb, fo, logp);
        const std::vector<double> s = sequence_logp_sums(mb, logp);
        for (size_t q = 0; q < idx.size(); q++) sums[(size_t) idx[q]] = s[q];
    }
    return sums;
}

}  // namespace selftune::train
