#include "train/checkpoint.h"

#include "train/rng.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace selftune::train {

namespace {

constexpr char kMagic[8] = {'S', 'T', 'C', 'K', 'P', 'T', '0', '1'};
// 2: each history record carries its objective metrics (DPO's rewards); 1 is still read.
constexpr uint32_t kVersion = 2;

// Hash over the byte stream, in 8-byte words (tail bytes padded): cheap and order-aware.
struct StreamHash {
    uint64_t h = mix64(0x436b7074);   // "Ckpt"
    uint64_t word = 0;
    int fill = 0;
    void add(const void * p, size_t n) {
        const uint8_t * b = (const uint8_t *) p;
        for (size_t i = 0; i < n; i++) {
            word |= (uint64_t) b[i] << (8 * fill);
            if (++fill == 8) {
                h = hash_combine(h, word);
                word = 0;
                fill = 0;
            }
        }
    }
    uint64_t final() const { return hash_combine(h, word ^ ((uint64_t) fill << 56)); }
};

struct Writer {
    FILE * f;
    StreamHash hash;
    bool ok = true;
    void raw(const void * p, size_t n) {
        hash.add(p, n);
        ok = ok && fwrite(p, 1, n, f) == n;
    }
    template <typename T> void put(T v) { raw(&v, sizeof v); }
};

struct Reader {
    const std::string & path;
    std::vector<uint8_t> buf;
    size_t pos = 0;
    void raw(void * p, size_t n) {
        if (pos + n > buf.size()) throw std::runtime_error(path + ": checkpoint is truncated");
        std::memcpy(p, buf.data() + pos, n);
        pos += n;
    }
    template <typename T> T get() {
        T v;
        raw(&v, sizeof v);
        return v;
    }
};

}  // namespace

void write_checkpoint(const std::string & path, const CheckpointState & s) {
    const std::string tmp = path + ".tmp";
    FILE * f = fopen(tmp.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write checkpoint " + tmp);
    Writer w{f};
    w.raw(kMagic, sizeof kMagic);
    w.put<uint32_t>(kVersion);
    w.put<uint64_t>(s.fingerprint);
    w.put<int64_t>(s.step);
    w.put<int64_t>(s.updates);
    w.put<int64_t>(s.tokens_seen);
    w.put<int64_t>(s.loss_tokens_seen);
    w.put<double>(s.seconds);
    w.put<int32_t>(s.lora.rank);
    w.put<float>(s.lora.alpha);
    w.put<float>(s.lora.dropout);
    w.put<uint32_t>(s.lora.targets);
    w.put<int64_t>((int64_t) s.params.size());
    w.put<int64_t>((int64_t) s.history.size());
    for (const StepRecord & r : s.history) {
        w.put<int64_t>(r.step);
        w.put<int32_t>(r.epoch);
        w.put<double>(r.loss);
        w.put<int64_t>(r.loss_tokens);
        w.put<int64_t>(r.tokens);
        w.put<float>(r.lr);
        w.put<double>(r.grad_norm);
        w.put<double>(r.seconds);
        w.put<int32_t>((int32_t) r.metrics.size());
        for (const auto & [name, value] : r.metrics) {
            w.put<int32_t>((int32_t) name.size());
            w.raw(name.data(), name.size());
            w.put<double>(value);
        }
    }
    w.raw(s.params.data(), s.params.size() * sizeof(float));
    w.raw(s.m.data(), s.m.size() * sizeof(float));
    w.raw(s.v.data(), s.v.size() * sizeof(float));
    const uint64_t h = w.hash.final();
    w.ok = w.ok && fwrite(&h, 1, sizeof h, f) == sizeof h;
    w.ok = fflush(f) == 0 && w.ok;
    fclose(f);
    if (!w.ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        throw std::runtime_error("failed to write checkpoint " + path);
    }
}

CheckpointState read_checkpoint(const std::string & path) {
    FILE * f = fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open checkpoint " + path);
    Reader r{path};
    uint8_t chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) r.buf.insert(r.buf.end(), chunk, chunk + n);
    fclose(f);
    if (r.buf.size() < sizeof kMagic + 8 || std::memcmp(r.buf.data(), kMagic, sizeof kMagic) != 0) {
        throw std::runtime_error(path + ": not a selftune checkpoint");
    }
    StreamHash hash;
    hash.add(r.buf.data(), r.buf.size() - 8);
    uint64_t stored;
    std::memcpy(&stored, r.buf.data() + r.buf.size() - 8, 8);
    if (stored != hash.final()) throw std::runtime_error(path + ": checkpoint is corrupt or truncated (hash mismatch)");
    r.buf.resize(r.buf.size() - 8);
    r.pos = sizeof kMagic;

    CheckpointState s;
    const uint32_t version = r.get<uint32_t>();
    if (version != 1 && version != kVersion) throw std::runtime_error(path + ": unsupported checkpoint version");
    s.fingerprint = r.get<uint64_t>();
    s.step = r.get<int64_t>();
    s.updates = r.get<int64_t>();
    s.tokens_seen = r.get<int64_t>();
    s.loss_tokens_seen = r.get<int64_t>();
    s.seconds = r.get<double>();
    s.lora.rank = r.get<int32_t>();
    s.lora.alpha = r.get<float>();
    s.lora.dropout = r.get<float>();
    s.lora.targets = r.get<uint32_t>();
    const int64_t n_params = r.get<int64_t>();
    const int64_t n_hist = r.get<int64_t>();
    if (n_params < 0 || n_hist < 0 || (size_t) n_params > r.buf.size() || (size_t) n_hist > r.buf.size()) {
        throw std::runtime_error(path + ": bad checkpoint sizes");
    }
    for (int64_t i = 0; i < n_hist; i++) {
        StepRecord h;
        h.step = r.get<int64_t>();
        h.epoch = r.get<int32_t>();
        h.loss = r.get<double>();
        h.loss_tokens = r.get<int64_t>();
        h.tokens = r.get<int64_t>();
        h.lr = r.get<float>();
        h.grad_norm = r.get<double>();
        h.seconds = r.get<double>();
        const int32_t n_metrics = version >= 2 ? r.get<int32_t>() : 0;
        if (n_metrics < 0 || n_metrics > 1024) throw std::runtime_error(path + ": bad checkpoint metrics");
        for (int32_t k = 0; k < n_metrics; k++) {
            const int32_t len = r.get<int32_t>();
            if (len < 0 || len > 4096) throw std::runtime_error(path + ": bad checkpoint metric name");
            std::string name((size_t) len, '\0');
            r.raw(name.data(), (size_t) len);
            h.metrics.push_back({std::move(name), r.get<double>()});
        }
        s.history.push_back(h);
    }
    for (auto * v : {&s.params, &s.m, &s.v}) {
        v->resize((size_t) n_params);
        r.raw(v->data(), (size_t) n_params * sizeof(float));
    }
    if (r.pos != r.buf.size()) throw std::runtime_error(path + ": trailing bytes in checkpoint");
    return s;
}

}  // namespace selftune::train
