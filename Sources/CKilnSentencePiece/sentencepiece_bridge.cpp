// The C++ side of kiln_sentencepiece.h: catches every exception at the boundary and turns
// SentencePiece's util::Status into KilnSPStatus plus a stored message.
#include "kiln_sentencepiece.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

namespace sentencepiece {
namespace logging {
void SetMinLogLevel(int v);  // exported by libsentencepiece, not declared in its public headers
}
}  // namespace sentencepiece

struct KilnSPProcessor {
    sentencepiece::SentencePieceProcessor processor;
    std::string lastError;
    bool loaded = false;
};

namespace {

KilnSPStatus translate(const sentencepiece::util::Status &status) {
    using sentencepiece::util::StatusCode;
    switch (status.code()) {
    case StatusCode::kOk: return KILN_SP_OK;
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition: return KILN_SP_INVALID_ARGUMENT;
    case StatusCode::kNotFound: return KILN_SP_NOT_FOUND;
    case StatusCode::kResourceExhausted: return KILN_SP_OUT_OF_MEMORY;
    default: return KILN_SP_INTERNAL;
    }
}

KilnSPStatus record(KilnSPProcessor *p, const sentencepiece::util::Status &status) {
    p->lastError = status.ok() ? std::string() : std::string(status.error_message());
    return translate(status);
}

template <typename Body> KilnSPStatus guarded(KilnSPProcessor *p, Body body) {
    if (p == nullptr) return KILN_SP_INVALID_ARGUMENT;
    try {
        return body();
    } catch (const std::bad_alloc &) {
        p->lastError = "out of memory";
        return KILN_SP_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        p->lastError = e.what();
        return KILN_SP_INTERNAL;
    } catch (...) {
        p->lastError = "unknown C++ exception";
        return KILN_SP_INTERNAL;
    }
}

KilnSPStatus requireLoaded(KilnSPProcessor *p) {
    if (p->loaded) return KILN_SP_OK;
    p->lastError = "no model loaded";
    return KILN_SP_INVALID_ARGUMENT;
}

bool validId(const KilnSPProcessor *p, int32_t id) {
    return p != nullptr && p->loaded && id >= 0 && id < p->processor.GetPieceSize();
}

}  // namespace

extern "C" {

KilnSPProcessor *kiln_sp_create(void) {
    try {
        return new KilnSPProcessor();
    } catch (...) {
        return nullptr;
    }
}

void kiln_sp_destroy(KilnSPProcessor *processor) { delete processor; }

KilnSPStatus kiln_sp_load_file(KilnSPProcessor *p, const char *path) {
    return guarded(p, [&] {
        if (path == nullptr) return KILN_SP_INVALID_ARGUMENT;
        KilnSPStatus status = record(p, p->processor.Load(path));
        p->loaded = status == KILN_SP_OK;
        return status;
    });
}

KilnSPStatus kiln_sp_load_bytes(KilnSPProcessor *p, const void *bytes, size_t length) {
    return guarded(p, [&] {
        if (bytes == nullptr && length > 0) return KILN_SP_INVALID_ARGUMENT;
        std::string serialized(static_cast<const char *>(bytes), length);
        KilnSPStatus status = record(p, p->processor.LoadFromSerializedProto(serialized));
        p->loaded = status == KILN_SP_OK;
        return status;
    });
}

const char *kiln_sp_last_error(const KilnSPProcessor *p) {
    return p == nullptr ? "null processor" : p->lastError.c_str();
}

KilnSPStatus kiln_sp_encode(KilnSPProcessor *p, const char *text, size_t length, int32_t *ids,
                            size_t capacity, size_t *count) {
    return guarded(p, [&] {
        if (requireLoaded(p) != KILN_SP_OK) return KILN_SP_INVALID_ARGUMENT;
        if ((text == nullptr && length > 0) || count == nullptr) return KILN_SP_INVALID_ARGUMENT;
        std::vector<int> out;
        KilnSPStatus status = record(p, p->processor.Encode(std::string(text ? text : "", length), &out));
        if (status != KILN_SP_OK) return status;
        *count = out.size();
        if (out.size() > capacity) return KILN_SP_BUFFER_TOO_SMALL;
        for (size_t i = 0; i < out.size(); ++i) ids[i] = out[i];
        return KILN_SP_OK;
    });
}

KilnSPStatus kiln_sp_decode(KilnSPProcessor *p, const int32_t *ids, size_t count, char *text,
                            size_t capacity, size_t *length) {
    return guarded(p, [&] {
        if (requireLoaded(p) != KILN_SP_OK) return KILN_SP_INVALID_ARGUMENT;
        if ((ids == nullptr && count > 0) || length == nullptr) return KILN_SP_INVALID_ARGUMENT;
        std::vector<int> in(ids, ids + count);
        for (int id : in) {
            if (!validId(p, id)) {
                p->lastError = "id " + std::to_string(id) + " is outside the vocabulary";
                return KILN_SP_INVALID_ARGUMENT;
            }
        }
        std::string out;
        KilnSPStatus status = record(p, p->processor.Decode(in, &out));
        if (status != KILN_SP_OK) return status;
        *length = out.size();
        if (out.size() > capacity) return KILN_SP_BUFFER_TOO_SMALL;
        if (!out.empty()) std::memcpy(text, out.data(), out.size());
        return KILN_SP_OK;
    });
}

int32_t kiln_sp_piece_count(const KilnSPProcessor *p) {
    return (p != nullptr && p->loaded) ? p->processor.GetPieceSize() : 0;
}

const char *kiln_sp_id_to_piece(const KilnSPProcessor *p, int32_t id) {
    return validId(p, id) ? p->processor.IdToPiece(id).c_str() : nullptr;
}

int32_t kiln_sp_piece_to_id(const KilnSPProcessor *p, const char *piece, size_t length) {
    if (p == nullptr || !p->loaded || (piece == nullptr && length > 0)) return -1;
    try {
        return p->processor.PieceToId(std::string(piece ? piece : "", length));
    } catch (...) {
        return -1;
    }
}

float kiln_sp_score(const KilnSPProcessor *p, int32_t id) {
    return validId(p, id) ? p->processor.GetScore(id) : 0.0f;
}

KilnSPPieceKind kiln_sp_piece_kind(const KilnSPProcessor *p, int32_t id) {
    if (!validId(p, id)) return KILN_SP_PIECE_UNUSED;
    if (p->processor.IsUnknown(id)) return KILN_SP_PIECE_UNKNOWN;
    if (p->processor.IsControl(id)) return KILN_SP_PIECE_CONTROL;
    if (p->processor.IsByte(id)) return KILN_SP_PIECE_BYTE;
    if (p->processor.IsUnused(id)) return KILN_SP_PIECE_UNUSED;
    return KILN_SP_PIECE_NORMAL;
}

int32_t kiln_sp_bos_id(const KilnSPProcessor *p) { return (p && p->loaded) ? p->processor.bos_id() : -1; }
int32_t kiln_sp_eos_id(const KilnSPProcessor *p) { return (p && p->loaded) ? p->processor.eos_id() : -1; }
int32_t kiln_sp_pad_id(const KilnSPProcessor *p) { return (p && p->loaded) ? p->processor.pad_id() : -1; }
int32_t kiln_sp_unk_id(const KilnSPProcessor *p) { return (p && p->loaded) ? p->processor.unk_id() : -1; }

KilnSPStatus kiln_sp_train(const char *arguments, char *error, size_t error_capacity) {
    auto report = [&](const std::string &message) {
        if (error != nullptr && error_capacity > 0) {
            size_t n = message.size() < error_capacity - 1 ? message.size() : error_capacity - 1;
            std::memcpy(error, message.data(), n);
            error[n] = '\0';
        }
    };
    report("");
    if (arguments == nullptr) {
        report("no training arguments");
        return KILN_SP_INVALID_ARGUMENT;
    }
    try {
        auto status = sentencepiece::SentencePieceTrainer::Train(arguments);
        if (!status.ok()) report(status.error_message());
        return translate(status);
    } catch (const std::bad_alloc &) {
        report("out of memory");
        return KILN_SP_OUT_OF_MEMORY;
    } catch (const std::exception &e) {
        report(e.what());
        return KILN_SP_INTERNAL;
    } catch (...) {
        report("unknown C++ exception");
        return KILN_SP_INTERNAL;
    }
}

void kiln_sp_set_log_level(int level) { sentencepiece::logging::SetMinLogLevel(level); }

}  // extern "C"
