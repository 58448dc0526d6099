#include "train/cuda/packed_rows.h"

#include "train/packed_batch.h"

#include <climits>
#include <stdexcept>

namespace selftune::train::cuda {

PackedRows pack_rows(const MicroBatch & b) {
    if (b.n_tokens() > INT_MAX) throw std::invalid_argument("micro-batch: more rows than the CUDA backend indexes");
    // The one packing every backend uses, narrowed to the 32-bit indices the kernels take.
    const PackedBatch pb = pack_micro_batch(b);
    PackedRows p;
    p.n_rows = pb.n_rows;
    p.n_seq = b.n_seq;
    p.max_len = pb.max_len;
    p.tokens = pb.tokens;
    p.pos = pb.pos;
    p.seq_start.assign(pb.seq_start.begin(), pb.seq_start.end());
    p.loss_rows.assign(pb.loss_rows.begin(), pb.loss_rows.end());
    p.targets = pb.loss_targets;
    return p;
}

}  // namespace selftune::train::cuda
