// llama.cpp's logits for given token ids, with an optional LoRA adapter, through its C API
// alone (nothing of selftune): the llama.cpp side of native/bench/peft_export_parity.py.
//
//   lora_logits <model.gguf> <adapter.gguf | -> <scale> <ids file> <out.f32>
//
// <ids file>: whitespace-separated token ids, one sequence. Writes n_ids x n_vocab f32
// (row-major, little-endian) logits of every position. <scale> multiplies the adapter's
// alpha / r, as llama-cli's --lora-scaled does. CPU, one thread, flash attention
// off, f32 K/V: the plain arithmetic, no GPU rounding.
#include "llama.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

[[noreturn]] static void die(const std::string & why) {
    std::fprintf(stderr, "lora_logits: %s\n", why.c_str());
    std::exit(1);
}

int main(int argc, char ** argv) {
    if (argc != 6) die("usage: lora_logits <model.gguf> <adapter.gguf|-> <scale> <ids file> <out.f32>");
    std::vector<llama_token> ids;
    {
        std::ifstream in(argv[4]);
        if (!in) die(std::string("cannot read ") + argv[4]);
        long v;
        while (in >> v) ids.push_back((llama_token) v);
    }
    if (ids.empty()) die("no token ids");
    llama_log_set([](ggml_log_level level, const char * text, void *) { if (level >= GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr); }, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) die(std::string("cannot load ") + argv[1]);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) ids.size() + 16;
    cp.n_batch = cp.n_ubatch = (uint32_t) ids.size();
    cp.n_threads = cp.n_threads_batch = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) die("cannot create a context");
    llama_adapter_lora * adapter = nullptr;
    if (std::string(argv[2]) != "-") {
        adapter = llama_adapter_lora_init(model, argv[2]);
        if (!adapter) die(std::string("cannot load adapter ") + argv[2]);
        float scale = std::strtof(argv[3], nullptr);
        if (llama_set_adapters_lora(ctx, &adapter, 1, &scale) != 0) die("cannot apply the adapter");
    }
    llama_batch batch = llama_batch_init((int32_t) ids.size(), 0, 1);
    for (size_t i = 0; i < ids.size(); i++) {
        batch.token[i] = ids[i];
        batch.pos[i] = (llama_pos) i;
        batch.n_seq_id[i] = 1;
        batch.seq_id[i][0] = 0;
        batch.logits[i] = 1;
    }
    batch.n_tokens = (int32_t) ids.size();
    if (llama_decode(ctx, batch) != 0) die("decode failed");
    const int32_t V = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::FILE * out = std::fopen(argv[5], "wb");
    if (!out) die(std::string("cannot write ") + argv[5]);
    for (size_t i = 0; i < ids.size(); i++) std::fwrite(llama_get_logits_ith(ctx, (int32_t) i), sizeof(float), (size_t) V, out);
    std::fclose(out);
    llama_batch_free(batch);
    if (adapter) llama_adapter_lora_free(adapter);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
