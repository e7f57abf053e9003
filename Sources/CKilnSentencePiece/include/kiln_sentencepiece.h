// A C interface over the SentencePiece C++ library (libsentencepiece).
//
// Opaque handles, integer status codes and a per-handle last-error string: no C++ type or
// exception crosses into Swift. Every function that can fail returns a KilnSPStatus; on failure
// the message is available from kiln_sp_last_error (processor) or the `error` buffer (trainer).
#ifndef KILN_SENTENCEPIECE_H
#define KILN_SENTENCEPIECE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KILN_SP_OK = 0,
    KILN_SP_INVALID_ARGUMENT = 1,
    KILN_SP_NOT_FOUND = 2,
    KILN_SP_INTERNAL = 3,
    KILN_SP_OUT_OF_MEMORY = 4,
    KILN_SP_BUFFER_TOO_SMALL = 5,
} KilnSPStatus;

typedef struct KilnSPProcessor KilnSPProcessor;

/// Creates an empty processor; NULL only when out of memory.
KilnSPProcessor *kiln_sp_create(void);
void kiln_sp_destroy(KilnSPProcessor *processor);

/// Loads a `.model` file.
KilnSPStatus kiln_sp_load_file(KilnSPProcessor *processor, const char *path);
/// Loads a serialized ModelProto held in memory.
KilnSPStatus kiln_sp_load_bytes(KilnSPProcessor *processor, const void *bytes, size_t length);
/// The message of the last failed call on this processor ("" if none). Valid until the next call.
const char *kiln_sp_last_error(const KilnSPProcessor *processor);

/// Encodes UTF-8 text into ids. Writes at most `capacity` ids into `ids` and the full count into
/// `*count`; returns KILN_SP_BUFFER_TOO_SMALL (with `*count` set) when `capacity` is too small.
KilnSPStatus kiln_sp_encode(KilnSPProcessor *processor, const char *text, size_t length,
                            int32_t *ids, size_t capacity, size_t *count);
/// Decodes ids into UTF-8 text. Same buffer protocol as kiln_sp_encode (`*length` excludes NUL;
/// the output is not NUL-terminated).
KilnSPStatus kiln_sp_decode(KilnSPProcessor *processor, const int32_t *ids, size_t count,
                            char *text, size_t capacity, size_t *length);

int32_t kiln_sp_piece_count(const KilnSPProcessor *processor);
/// The piece for `id` (NUL-terminated, owned by the processor), or NULL when out of range.
const char *kiln_sp_id_to_piece(const KilnSPProcessor *processor, int32_t id);
/// The id for `piece`, or the unknown id when the piece is not in the vocabulary.
int32_t kiln_sp_piece_to_id(const KilnSPProcessor *processor, const char *piece, size_t length);
float kiln_sp_score(const KilnSPProcessor *processor, int32_t id);

typedef enum {
    KILN_SP_PIECE_NORMAL = 0,
    KILN_SP_PIECE_UNKNOWN = 1,
    KILN_SP_PIECE_CONTROL = 2,
    KILN_SP_PIECE_BYTE = 3,
    KILN_SP_PIECE_UNUSED = 4,
} KilnSPPieceKind;
KilnSPPieceKind kiln_sp_piece_kind(const KilnSPProcessor *processor, int32_t id);

/// Special ids; -1 when the model has none.
int32_t kiln_sp_bos_id(const KilnSPProcessor *processor);
int32_t kiln_sp_eos_id(const KilnSPProcessor *processor);
int32_t kiln_sp_pad_id(const KilnSPProcessor *processor);
int32_t kiln_sp_unk_id(const KilnSPProcessor *processor);

/// Trains a model with SentencePiece's flag syntax
/// (e.g. "--input=a.txt --model_prefix=out/m --vocab_size=8000 --model_type=bpe").
/// On failure writes a NUL-terminated message into `error` (truncated to `error_capacity`).
KilnSPStatus kiln_sp_train(const char *arguments, char *error, size_t error_capacity);

/// Sets the library's own log level: 0 info, 1 warning, 2 error, 3 fatal only.
void kiln_sp_set_log_level(int level);

#ifdef __cplusplus
}
#endif
#endif
