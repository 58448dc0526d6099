// libFuzzer target for the GGUF readers: ggml's gguf_init_from_file (through check_gguf)
// and our validators (model_check, vocab_check, adapter_check), the code every model and
// adapter load runs before llama.cpp sees a file. A finding is a crash, an ASan report, a
// leak or a timeout; a thrown std::runtime_error is the expected answer to a bad file.
//
// With SELFTUNE_FUZZ_LOAD (`bun run fuzz:gguf -- <seconds> --load`), a model the checks
// accept then goes through llama.cpp's own load of its metadata and tensor table (no_alloc,
// what checkGguf runs for `model info`): a finding there is a setting that reaches one of
// llama.cpp's asserts past our checks. That variant links the addon's llama.cpp build
// (native/build, uninstrumented), so only our code is instrumented in it.
//
// Built and run by native/fuzz/run.ts (`bun run fuzz:gguf [-- seconds]`), outside CI.

#include "adapter_check.h"
#include "gguf_check.h"
#include "model_check.h"

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <unistd.h>

#ifdef SELFTUNE_FUZZ_LOAD
#include "llama.h"
#include "log.h"

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
    selftune::log_install();   // llama.cpp's and ggml's logs through log.cpp, silenced
    selftune::log_set_level(selftune::LogLevel::none);
    llama_backend_init();
    return 0;
}

// llama.cpp's own load with nothing read or allocated, as ModelHandle::check_loads runs it.
static void llama_dry_load(const std::string & path) {
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    mp.no_alloc = true;
    mp.load_mode = LLAMA_LOAD_MODE_NONE;
    mp.use_extra_bufts = false;
    llama_model * model = llama_model_load_from_file(path.c_str(), mp);
    if (model) llama_model_free(model);
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    // The readers take a path (gguf_init_from_file, stat for the size): one file per process.
    static const std::string path = "/tmp/selftune-gguf-fuzz-" + std::to_string(getpid()) + ".gguf";
    FILE * f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        const selftune::CheckedGguf file = selftune::read_checked_gguf(path);
        if (file.header.general_type == "adapter") {
            selftune::check_adapter_settings(file, "", nullptr);
        } else {
            const selftune::ModelSettings s = selftune::check_model_settings(file, file.header.n_tensors == 0);
            (void) s;
#ifdef SELFTUNE_FUZZ_LOAD
            if (file.header.n_tensors > 0) llama_dry_load(path);
#endif
        }
    } catch (const std::exception &) {
    }
    return 0;
}
