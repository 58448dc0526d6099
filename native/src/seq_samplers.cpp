#include "seq_samplers.h"

#include "session.h"

#include <stdexcept>
#include <string>

namespace selftune {

bool reduce_in_graph(ReduceOn where, const Session & session) {
    return where == ReduceOn::graph || (where == ReduceOn::automatic && session.model()->output_on_gpu());
}

ReduceOn reduce_on_from_js(const Napi::Value & v, const std::string & what) {
    if (v.IsUndefined() || v.IsNull()) return ReduceOn::automatic;
    const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
    if (s == "auto") return ReduceOn::automatic;
    if (s == "graph") return ReduceOn::graph;
    if (s == "host") return ReduceOn::host;
    throw Napi::TypeError::New(v.Env(), what + " must be \"auto\", \"graph\" or \"host\"");
}

SeqSamplers::~SeqSamplers() {
    for (auto & [seq, chain] : chains_) {
        llama_set_sampler(ctx_, seq, nullptr);
        llama_sampler_free(chain);
    }
}

void SeqSamplers::install(llama_seq_id seq, llama_sampler * member) {
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    llama_sampler * chain = llama_sampler_chain_init(cp);
    llama_sampler_chain_add(chain, member);
    chains_.push_back({seq, chain});   // freed by the destructor whatever happens next
    if (!llama_set_sampler(ctx_, seq, chain)) {
        throw std::runtime_error("llama.cpp cannot run a sampler in the graph for sequence " + std::to_string(seq));
    }
}

}  // namespace selftune
