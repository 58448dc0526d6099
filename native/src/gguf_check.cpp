#include "gguf_check.h"

#include "ggml.h"
#include "gguf.h"
#include "log.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <sys/stat.h>

namespace selftune {

namespace {

[[noreturn]] void fail(const std::string & path, const std::string & why) {
    throw std::runtime_error(path + ": " + why);
}

std::string get_string(const gguf_context * g, const char * key, const std::string & path, bool required) {
    const int64_t id = gguf_find_key(g, key);
    if (id < 0) {
        if (required) fail(path, std::string("missing metadata key ") + key);
        return "";
    }
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) {
        fail(path, std::string("metadata key ") + key + " is not a string (type " +
                       gguf_type_name(gguf_get_kv_type(g, id)) + ")");
    }
    return gguf_get_val_str(g, id);
}

CheckedGguf parse(const std::string & path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
        fail(path, std::string("cannot open: ") + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");

    CheckedGguf p;
    p.path = path;
    p.header.file_size = (uint64_t) st.st_size;

    // magic(4) version(4) n_tensors(8) n_kv(8)
    if (st.st_size < 24) fail(path, "not a GGUF file (only " + std::to_string(st.st_size) + " bytes)");
    {
        FILE * f = std::fopen(path.c_str(), "rb");
        if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
        unsigned char head[8];
        const size_t n = std::fread(head, 1, sizeof(head), f);
        std::fclose(f);
        if (n != sizeof(head)) fail(path, "cannot read the file header");
        if (std::memcmp(head, "GGUF", 4) != 0) fail(path, "not a GGUF file (bad magic)");
        std::memcpy(&p.header.version, head + 4, 4);
        if (p.header.version < 2 || p.header.version > 3) {
            fail(path, "unsupported GGUF version " + std::to_string(p.header.version));
        }
    }

    LogCapture capture;
    ggml_context * meta = nullptr;
    gguf_init_params params = {/*no_alloc =*/ true, /*ctx =*/ &meta};
    p.gguf.reset(gguf_init_from_file(path.c_str(), params));
    p.tensors.reset(meta);
    if (!p.gguf) {
        const std::string why = capture.errors();
        fail(path, "malformed or truncated GGUF header" + (why.empty() ? std::string() : " (" + why + ")"));
    }

    const gguf_context * g = p.gguf.get();
    p.header.n_tensors = gguf_get_n_tensors(g);
    p.header.n_kv = gguf_get_n_kv(g);

    const uint64_t data_offset = gguf_get_data_offset(g);
    for (int64_t i = 0; i < p.header.n_tensors; i++) {
        const uint64_t end = data_offset + gguf_get_tensor_offset(g, i) + gguf_get_tensor_size(g, i);
        if (end > p.header.file_size) {
            fail(path, std::string("truncated: data of tensor '") + gguf_get_tensor_name(g, i) + "' ends at byte " +
                           std::to_string(end) + " but the file has " + std::to_string(p.header.file_size));
        }
    }

    p.header.architecture = get_string(g, "general.architecture", path, true);
    p.header.general_type = get_string(g, "general.type", path, false);
    return p;
}

}  // namespace

void GgufContextFree::operator()(gguf_context * ctx) const { gguf_free(ctx); }
void GgmlContextFree::operator()(ggml_context * ctx) const { ggml_free(ctx); }

GgufHeader check_gguf(const std::string & path) {
    return parse(path).header;
}

CheckedGguf read_checked_gguf(const std::string & path) {
    return parse(path);
}

void check_lora_adapter_keys(const CheckedGguf & p, const std::string & model_arch) {
    const std::string & path = p.path;
    const gguf_context * g = p.gguf.get();
    if (p.header.general_type != "adapter") {
        fail(path, "not an adapter (general.type is '" + p.header.general_type + "', expected 'adapter')");
    }
    const std::string adapter_type = get_string(g, "adapter.type", path, true);
    if (adapter_type != "lora") fail(path, "adapter.type is '" + adapter_type + "', expected 'lora'");
    const int64_t alpha = gguf_find_key(g, "adapter.lora.alpha");
    if (alpha >= 0 && gguf_get_kv_type(g, alpha) != GGUF_TYPE_FLOAT32) {
        fail(path, std::string("adapter.lora.alpha must be f32, is ") + gguf_type_name(gguf_get_kv_type(g, alpha)));
    }
    if (!model_arch.empty() && p.header.architecture != model_arch) {
        fail(path, "adapter is for architecture '" + p.header.architecture + "' but the model is '" + model_arch + "'");
    }
    if (p.header.n_tensors == 0) fail(path, "adapter has no tensors");
}

}  // namespace selftune
