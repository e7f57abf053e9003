// The type table and the exact-order kernels of every block type (formats in kiln_quant.h).
//
// Kiln's products compute what llama.cpp's x86 CPU backend computes, in its order, so logits agree
// to the last bit. Its kernels fall in two families, and each table row names its family:
//  - "lanes": per block, eight int32 lanes, lane l holding the integer products of elements
//    4l..4l+3 of every 32 (with the type's scales and offsets applied the way ggml's AVX2 code
//    does), scaled by d_w·d_a and accumulated with one FMA per block into eight float lanes that
//    are summed pairwise at the end; a type with mins adds Σ m·s as its own FMA chain.
//  - "rows": the types llama.cpp repacks into 8-row interleaved blocks on AVX2 machines (Q4_0,
//    IQ4_NL, Q4_K, Q2_K): each output accumulates whole integer dot products of a span of the
//    row, one FMA per span, and subtracts the mins' chain at the end. The span is a block for
//    decode (gemv) and, for K-quants, a sub-block group when four tokens are multiplied at once
//    (gemm): 64 weights for Q4_K, 128 for Q2_K.
// Integer sums are exact, so only the float steps above need to follow ggml.
#include <math.h>

#include "quant_internal.h"

static void scales_q3_K(const uint8_t *p, int32_t *sc);

const int8_t kiln_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// ---- the table -------------------------------------------------------------------------------

typedef void (*DequantizeBlock)(const uint8_t *block, float *out);

typedef void (*EncodeRow)(const float *x, uint8_t *out, int64_t count);

typedef enum { FAMILY_NONE, FAMILY_LANES, FAMILY_ROWS } KernelFamily;

typedef struct {
    KilnQuantTypeInfo info;
    DequantizeBlock dequantize;
    EncodeRow encode;  // quantization as ggml's reference quantizers do it (quant_encode.c)
    KernelFamily family;
    int32_t gemmSpan;  // rows family: weights per FMA when four tokens are multiplied together
} TypeRow;

static void dq_q4_0(const uint8_t *p, float *y);
static void dq_q4_1(const uint8_t *p, float *y);
static void dq_q5_0(const uint8_t *p, float *y);
static void dq_q5_1(const uint8_t *p, float *y);
static void dq_q8_0(const uint8_t *p, float *y);
static void dq_iq4_nl(const uint8_t *p, float *y);
static void dq_q2_K(const uint8_t *p, float *y);
static void dq_q3_K(const uint8_t *p, float *y);
static void dq_q4_K(const uint8_t *p, float *y);
static void dq_q5_K(const uint8_t *p, float *y);
static void dq_q6_K(const uint8_t *p, float *y);
static void dq_iq4_xs(const uint8_t *p, float *y);
static void dq_f32(const uint8_t *p, float *y) { memcpy(y, p, 4); }
static void dq_f16(const uint8_t *p, float *y) { *y = load_f16(p); }
static void dq_bf16(const uint8_t *p, float *y) {
    uint32_t bits = (uint32_t)load_u16(p) << 16;
    memcpy(y, &bits, 4);
}

// The largest batch in which a token's products keep the bits it gets alone: any for the 32-value
// block types, whose batched kernels sum as the single-token ones do; 7 for the other K-quants,
// which take llama.cpp's tiled order from eight tokens; 3 for Q4_K and Q2_K, which take a shorter
// gemm span for each group of four; 1 for f16/bf16, batched from two (QuantizedTests checks every
// row against its batches).
#define EXACT_BATCH(ACT, FAMILY, SPAN, N)                                                   \
    ((ACT) == Q8_0_ && ((FAMILY) != FAMILY_ROWS || (SPAN) == (N)) ? INT32_MAX               \
     : (ACT) == Q8_K_ ? ((FAMILY) == FAMILY_ROWS ? 3 : 7) : 1)
#define ROW(T, NAME, N, BYTES, ACT, KERNELS, DQ, ENC, FAMILY, SPAN) \
    {{T, NAME, N, BYTES, ACT, KERNELS, ENC != NULL, KERNELS ? EXACT_BATCH(ACT, FAMILY, SPAN, N) : 1}, DQ, ENC, FAMILY, SPAN}
enum {
    NONE_ = KILN_ACTIVATION_NONE, Q8_0_ = KILN_ACTIVATION_Q8_0, Q8_K_ = KILN_ACTIVATION_Q8_K,
    F16_ = KILN_ACTIVATION_F16, BF16_ = KILN_ACTIVATION_BF16
};

static const TypeRow kTypes[] = {
    ROW(0, "F32", 1, 4, NONE_, 1, dq_f32, NULL, FAMILY_NONE, 0),
    ROW(1, "F16", 1, 2, F16_, 1, dq_f16, kiln_encode_f16, FAMILY_NONE, 0),
    ROW(2, "Q4_0", 32, 18, Q8_0_, 1, dq_q4_0, kiln_encode_q4_0, FAMILY_ROWS, 32),
    ROW(3, "Q4_1", 32, 20, Q8_0_, 1, dq_q4_1, kiln_encode_q4_1, FAMILY_LANES, 0),
    ROW(6, "Q5_0", 32, 22, Q8_0_, 1, dq_q5_0, kiln_encode_q5_0, FAMILY_LANES, 0),
    ROW(7, "Q5_1", 32, 24, Q8_0_, 1, dq_q5_1, kiln_encode_q5_1, FAMILY_LANES, 0),
    ROW(8, "Q8_0", 32, 34, Q8_0_, 1, dq_q8_0, kiln_encode_q8_0, FAMILY_LANES, 0),
    ROW(9, "Q8_1", 32, 36, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(10, "Q2_K", 256, 84, Q8_K_, 1, dq_q2_K, kiln_encode_q2_K, FAMILY_ROWS, 128),
    ROW(11, "Q3_K", 256, 110, Q8_K_, 1, dq_q3_K, kiln_encode_q3_K, FAMILY_LANES, 0),
    ROW(12, "Q4_K", 256, 144, Q8_K_, 1, dq_q4_K, kiln_encode_q4_K, FAMILY_ROWS, 64),
    ROW(13, "Q5_K", 256, 176, Q8_K_, 1, dq_q5_K, kiln_encode_q5_K, FAMILY_LANES, 0),
    ROW(14, "Q6_K", 256, 210, Q8_K_, 1, dq_q6_K, kiln_encode_q6_K, FAMILY_LANES, 0),
    ROW(15, "Q8_K", 256, 292, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(16, "IQ2_XXS", 256, 66, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(17, "IQ2_XS", 256, 74, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(18, "IQ3_XXS", 256, 98, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(19, "IQ1_S", 256, 50, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(20, "IQ4_NL", 32, 18, Q8_0_, 1, dq_iq4_nl, kiln_encode_iq4_nl, FAMILY_ROWS, 32),
    ROW(21, "IQ3_S", 256, 110, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(22, "IQ2_S", 256, 82, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(23, "IQ4_XS", 256, 136, Q8_K_, 1, dq_iq4_xs, kiln_encode_iq4_xs, FAMILY_LANES, 0),
    ROW(24, "I8", 1, 1, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(25, "I16", 1, 2, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(26, "I32", 1, 4, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(27, "I64", 1, 8, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(28, "F64", 1, 8, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(29, "IQ1_M", 256, 56, NONE_, 0, NULL, NULL, FAMILY_NONE, 0),
    ROW(30, "BF16", 1, 2, BF16_, 1, dq_bf16, kiln_encode_bf16, FAMILY_NONE, 0),
};
enum { kTypeCount = sizeof(kTypes) / sizeof(kTypes[0]) };

static const TypeRow *row_of(int type) {
    for (int i = 0; i < kTypeCount; i++) {
        if (kTypes[i].info.type == type) return &kTypes[i];
    }
    return NULL;
}

const KilnQuantTypeInfo *kiln_quant_type_info(int type) {
    const TypeRow *row = row_of(type);
    return row ? &row->info : NULL;
}

size_t kiln_quant_block_bytes(int type) {
    const TypeRow *row = row_of(type);
    return row ? (size_t)row->info.blockBytes : 0;
}

size_t kiln_quantize_rows(int type, const float *x, void *out, int64_t rows, int64_t columns) {
    const TypeRow *row = row_of(type);
    if (!row || !row->encode || columns <= 0 || columns % row->info.blockElements != 0) return 0;
    const size_t rowBytes = (size_t)(columns / row->info.blockElements) * (size_t)row->info.blockBytes;
    uint8_t *y = (uint8_t *)out;
    for (int64_t r = 0; r < rows; r++) row->encode(x + r * columns, y + (size_t)r * rowBytes, columns);
    return (size_t)rows * rowBytes;
}

void kiln_dequantize(int type, const void *blocks, int64_t elementCount, float *out) {
    const TypeRow *row = row_of(type);
    if (!row || !row->dequantize) return;
    const uint8_t *p = (const uint8_t *)blocks;
    const int64_t n = row->info.blockElements;
    for (int64_t i = 0; i < elementCount / n; i++) row->dequantize(p + i * row->info.blockBytes, out + i * n);
}

// ---- block decoding -------------------------------------------------------------------------
// Each decoder yields a block's integer weights (and its integer scales) as ggml's dot products
// see them; dequantization multiplies them out as ggml's dequantize_row_* does. Where a minimum
// is added, the product before it is exact (few-bit integers times an f16-derived scale), so the
// fused multiply-add rounds exactly as ggml's separate multiply and add.

static void ints_q4_0(const uint8_t *p, int32_t *w) {
    for (int j = 0; j < 16; j++) {
        w[j] = (p[2 + j] & 0x0F) - 8;
        w[j + 16] = (p[2 + j] >> 4) - 8;
    }
}

static void ints_q5(const uint8_t *qhBytes, const uint8_t *qs, int32_t offset, int32_t *w) {
    uint32_t qh;
    memcpy(&qh, qhBytes, 4);
    for (int j = 0; j < 16; j++) {
        w[j] = ((qs[j] & 0x0F) | (((qh >> j) << 4) & 0x10)) - offset;
        w[j + 16] = ((qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - offset;
    }
}

static void ints_iq4_nl(const uint8_t *qs, int32_t *w) {
    for (int j = 0; j < 16; j++) {
        w[j] = kiln_iq4nl_values[qs[j] & 0x0F];
        w[j + 16] = kiln_iq4nl_values[qs[j] >> 4];
    }
}

// Q2_K: 16 scale bytes (low nibble scale, high nibble min), 2-bit quants.
static void ints_q2_K(const uint8_t *p, int32_t *w) {
    const uint8_t *qs = p + 16;
    for (int h = 0; h < 2; h++) {
        for (int j = 0; j < 4; j++) {
            for (int l = 0; l < 32; l++) w[128 * h + 32 * j + l] = (qs[32 * h + l] >> (2 * j)) & 3;
        }
    }
}

// Q3_K: 16 signed 6-bit scales (minus 32) and quants in −4…3.

static void scales_q3_K(const uint8_t *p, int32_t *sc) {
    uint32_t aux[4];
    memcpy(aux, p + 96, 12);
    const uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    const int8_t *s = (const int8_t *)aux;
    for (int i = 0; i < 16; i++) sc[i] = s[i] - 32;
}

static void ints_q3_K(const uint8_t *p, int32_t *w) {
    const uint8_t *hm = p, *qs = p + 32;
    for (int h = 0; h < 2; h++) {
        for (int j = 0; j < 4; j++) {
            const int bit = 4 * h + j;
            for (int l = 0; l < 32; l++) {
                w[128 * h + 32 * j + l] = ((qs[32 * h + l] >> (2 * j)) & 3) - ((hm[l] >> bit) & 1 ? 0 : 4);
            }
        }
    }
}

static void ints_q4_K(const uint8_t *p, int32_t *w) {
    const uint8_t *qs = p + 16;
    for (int j = 0; j < 4; j++) {
        for (int l = 0; l < 32; l++) {
            w[64 * j + l] = qs[32 * j + l] & 0xF;
            w[64 * j + 32 + l] = qs[32 * j + l] >> 4;
        }
    }
}

static void ints_q5_K(const uint8_t *p, int32_t *w) {
    const uint8_t *qh = p + 16, *qs = p + 48;
    for (int j = 0; j < 4; j++) {
        for (int l = 0; l < 32; l++) {
            w[64 * j + l] = (qs[32 * j + l] & 0xF) + ((qh[l] >> (2 * j)) & 1 ? 16 : 0);
            w[64 * j + 32 + l] = (qs[32 * j + l] >> 4) + ((qh[l] >> (2 * j + 1)) & 1 ? 16 : 0);
        }
    }
}

// Q6_K's unsigned 6-bit quants (0…63; ggml subtracts 32 through the activation sums).
static void ints_q6_K(const uint8_t *p, int32_t *w) {
    const uint8_t *ql = p, *qh = p + 128;
    for (int h = 0; h < 2; h++) {
        const uint8_t *l4 = ql + 64 * h, *hb = qh + 32 * h;
        int32_t *y = w + 128 * h;
        for (int l = 0; l < 32; l++) {
            y[l] = (l4[l] & 0xF) | (((hb[l] >> 0) & 3) << 4);
            y[l + 32] = (l4[l + 32] & 0xF) | (((hb[l] >> 2) & 3) << 4);
            y[l + 64] = (l4[l] >> 4) | (((hb[l] >> 4) & 3) << 4);
            y[l + 96] = (l4[l + 32] >> 4) | (((hb[l] >> 6) & 3) << 4);
        }
    }
}

static int32_t iq4_xs_scale(const uint8_t *p, int ib) {
    const uint16_t sh = load_u16(p + 2);
    return (((p[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((sh >> (2 * ib)) & 3) << 4)) - 32;
}

static void ints_iq4_xs(const uint8_t *p, int32_t *w) {
    for (int ib = 0; ib < 8; ib++) ints_iq4_nl(p + 8 + 16 * ib, w + 32 * ib);
}

// ---- dequantization -------------------------------------------------------------------------

static void dq_q4_0(const uint8_t *p, float *y) {
    int32_t w[32];
    ints_q4_0(p, w);
    const float d = load_f16(p);
    for (int j = 0; j < 32; j++) y[j] = (float)w[j] * d;
}

static void dq_q4_1(const uint8_t *p, float *y) {
    const float d = load_f16(p), m = load_f16(p + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = fmaf((float)(p[4 + j] & 0x0F), d, m);
        y[j + 16] = fmaf((float)(p[4 + j] >> 4), d, m);
    }
}

static void dq_q5_0(const uint8_t *p, float *y) {
    int32_t w[32];
    ints_q5(p + 2, p + 6, 16, w);
    const float d = load_f16(p);
    for (int j = 0; j < 32; j++) y[j] = (float)w[j] * d;
}

static void dq_q5_1(const uint8_t *p, float *y) {
    int32_t w[32];
    ints_q5(p + 4, p + 8, 0, w);
    const float d = load_f16(p), m = load_f16(p + 2);
    for (int j = 0; j < 32; j++) y[j] = fmaf((float)w[j], d, m);
}

static void dq_q8_0(const uint8_t *p, float *y) {
    const float d = load_f16(p);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)p[2 + j] * d;
}

static void dq_iq4_nl(const uint8_t *p, float *y) {
    int32_t w[32];
    ints_iq4_nl(p + 2, w);
    const float d = load_f16(p);
    for (int j = 0; j < 32; j++) y[j] = d * (float)w[j];
}

static void dq_q2_K(const uint8_t *p, float *y) {
    int32_t w[256];
    ints_q2_K(p, w);
    const float d = load_f16(p + 80), dmin = load_f16(p + 82);
    for (int i = 0; i < 16; i++) {
        const float dl = d * (float)(p[i] & 0xF), ml = dmin * (float)(p[i] >> 4);
        for (int l = 0; l < 16; l++) y[16 * i + l] = fmaf(dl, (float)w[16 * i + l], -ml);
    }
}

static void dq_q3_K(const uint8_t *p, float *y) {
    int32_t w[256], sc[16];
    ints_q3_K(p, w);
    scales_q3_K(p, sc);
    const float d = load_f16(p + 108);
    for (int i = 0; i < 16; i++) {
        const float dl = d * (float)sc[i];
        for (int l = 0; l < 16; l++) y[16 * i + l] = dl * (float)w[16 * i + l];
    }
}

// Q4_K and Q5_K: d, dmin and the packed 6-bit scales and mins lead the block.
static void dq_scale_min_k4(const uint8_t *p, const int32_t *w, float *y) {
    const float d = load_f16(p), dmin = load_f16(p + 2);
    for (int i = 0; i < 8; i++) {
        int32_t sc, m;
        scale_min_k4(i, p + 4, &sc, &m);
        const float d1 = d * (float)sc, m1 = dmin * (float)m;
        for (int l = 0; l < 32; l++) y[32 * i + l] = fmaf(d1, (float)w[32 * i + l], -m1);
    }
}

static void dq_q4_K(const uint8_t *p, float *y) {
    int32_t w[256];
    ints_q4_K(p, w);
    dq_scale_min_k4(p, w, y);
}

static void dq_q5_K(const uint8_t *p, float *y) {
    int32_t w[256];
    ints_q5_K(p, w);
    dq_scale_min_k4(p, w, y);
}

static void dq_q6_K(const uint8_t *p, float *y) {
    int32_t w[256];
    ints_q6_K(p, w);
    const float d = load_f16(p + 208);
    const int8_t *sc = (const int8_t *)(p + 192);
    for (int e = 0; e < 256; e++) y[e] = d * (float)sc[e / 16] * (float)(w[e] - 32);
}

static void dq_iq4_xs(const uint8_t *p, float *y) {
    int32_t w[256];
    ints_iq4_xs(p, w);
    const float d = load_f16(p);
    for (int ib = 0; ib < 8; ib++) {
        const float dl = d * (float)iq4_xs_scale(p, ib);
        for (int j = 0; j < 32; j++) y[32 * ib + j] = dl * (float)w[32 * ib + j];
    }
}

// ---- q8_K activations -----------------------------------------------------------------------

static inline int nearest_int(float v) {
    // Round half to even through the float mantissa, as ggml's nearest_int.
    float shifted = v + 12582912.f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007fffff) - 0x00400000;
}

void kiln_quantize_q8_K(const float *x, int64_t superBlocks, KilnQ8Activations out, int64_t row) {
    for (int64_t b = 0; b < superBlocks; b++) {
        const float *v = x + b * KILN_QK_K;
        const int64_t block = row * superBlocks + b;
        int8_t *q = out.kValues + block * KILN_QK_K;
        int16_t *sums = out.kSums + block * 16;
        float max = 0, amax = 0;
        for (int j = 0; j < KILN_QK_K; j++) {
            const float ax = fabsf(v[j]);
            if (ax > amax) {
                amax = ax;
                max = v[j];
            }
        }
        if (amax == 0) {
            out.kScales[block] = 0;
            memset(q, 0, KILN_QK_K);
            memset(sums, 0, 16 * sizeof(int16_t));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < KILN_QK_K; j++) {
            const int qi = nearest_int(iscale * v[j]);
            q[j] = (int8_t)(qi < 127 ? qi : 127);
        }
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += q[16 * j + i];
            sums[j] = (int16_t)sum;
        }
        out.kScales[block] = 1 / iscale;
    }
}

// ---- exact-order dot products ---------------------------------------------------------------

// A K-quant super-block as every order reads it: integer weights (Q6_K's unsigned, its offset 32
// taken through the activation sums as ggml does), the scale and min of each 16 weights, and d, dmin.
typedef struct {
    int32_t ints[256];
    int32_t scales[16];
    int32_t mins[16];  // 0 for types without mins
    float d, dmin;
} SuperBlock;

static void decode_super_block(int type, const uint8_t *p, SuperBlock *k) {
    int32_t sc[16], mins[8];
    memset(k->mins, 0, sizeof k->mins);
    k->dmin = 0;
    switch (type) {
    case KILN_QTYPE_Q2_K:
        ints_q2_K(p, k->ints);
        for (int i = 0; i < 16; i++) {
            k->scales[i] = p[i] & 0xF;
            k->mins[i] = p[i] >> 4;
        }
        k->d = load_f16(p + 80);
        k->dmin = load_f16(p + 82);
        return;
    case KILN_QTYPE_Q3_K:
        ints_q3_K(p, k->ints);
        scales_q3_K(p, k->scales);
        k->d = load_f16(p + 108);
        return;
    case KILN_QTYPE_Q6_K: {
        ints_q6_K(p, k->ints);
        const int8_t *s8 = (const int8_t *)(p + 192);
        for (int i = 0; i < 16; i++) k->scales[i] = s8[i];
        k->d = load_f16(p + 208);
        return;
    }
    case KILN_QTYPE_IQ4_XS:
        ints_iq4_xs(p, k->ints);
        for (int ib = 0; ib < 8; ib++) sc[ib] = iq4_xs_scale(p, ib);
        k->d = load_f16(p);
        break;
    default:  // Q4_K, Q5_K
        if (type == KILN_QTYPE_Q4_K) ints_q4_K(p, k->ints);
        else ints_q5_K(p, k->ints);
        for (int j = 0; j < 8; j++) scale_min_k4(j, p + 4, &sc[j], &mins[j]);
        for (int j = 0; j < 8; j++) k->mins[2 * j] = k->mins[2 * j + 1] = mins[j];
        k->d = load_f16(p);
        k->dmin = load_f16(p + 2);
        break;
    }
    for (int j = 0; j < 8; j++) k->scales[2 * j] = k->scales[2 * j + 1] = sc[j];  // 32-weight scales
}

// vec_dot's eight int32 lanes of a super-block: lane l takes elements 4l…4l+3 of every 32.
static void super_block_lanes(int type, const SuperBlock *k, const int8_t *q8, const int16_t *bsums, int32_t lanes[8]) {
    for (int l = 0; l < 8; l++) lanes[l] = 0;
    for (int e = 0; e < 256; e++) lanes[(e & 31) >> 2] += k->scales[e / 16] * k->ints[e] * q8[e];
    if (type == KILN_QTYPE_Q6_K) {
        for (int l = 0; l < 8; l++) {
            lanes[l] -= 32 * (bsums[2 * l] * k->scales[2 * l] + bsums[2 * l + 1] * k->scales[2 * l + 1]);
        }
    }
}

static int32_t super_block_min_sum(const SuperBlock *k, const int16_t *bsums, int firstGroup, int groupEnd) {
    int32_t sum = 0;
    for (int g = firstGroup; g < groupEnd; g++) sum += k->mins[g] * bsums[g];
    return sum;
}

// One output of a 32-weight type in vec_dot's lane order.
static float dot_lanes_32(int type, const uint8_t *w, int64_t blockCount, KilnQ8Activations a, int64_t t) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float summs = 0;
    int32_t ints[32];
    const size_t bytes = kiln_quant_block_bytes(type);
    for (int64_t b = 0; b < blockCount; b++) {
        const uint8_t *p = w + b * bytes;
        const int64_t block = t * blockCount + b;
        switch (type) {
        case KILN_QTYPE_Q4_1:
            for (int j = 0; j < 16; j++) {
                ints[j] = p[4 + j] & 0x0F;
                ints[j + 16] = p[4 + j] >> 4;
            }
            break;
        case KILN_QTYPE_Q5_0: ints_q5(p + 2, p + 6, 16, ints); break;
        case KILN_QTYPE_Q5_1: ints_q5(p + 4, p + 8, 0, ints); break;
        default:
            for (int j = 0; j < 32; j++) ints[j] = (int8_t)p[2 + j];
            break;
        }
        const int8_t *q8 = a.values + block * KILN_QK;
        int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < 32; e++) lanes[e >> 2] += ints[e] * q8[e];
        const float scale = load_f16(p) * a.scales[block];
        for (int l = 0; l < 8; l++) acc[l] = fmaf(scale, (float)lanes[l], acc[l]);
        if (type == KILN_QTYPE_Q4_1 || type == KILN_QTYPE_Q5_1) summs = fmaf(load_f16(p + 2), a.sums[block], summs);
    }
    return sum_lanes8(acc) + summs;
}

// The three orders of a K-quant output over its super-blocks (quant_types.c's header):
// vec_dot lanes, ggml's tiled kernel (from 8 tokens), or repacked rows in spans of `span` weights.
typedef enum { ORDER_LANES, ORDER_TILED, ORDER_ROWS } SuperBlockOrder;

static float dot_super_blocks(int type, const uint8_t *w, int64_t blockCount, KilnQ8Activations a, int64_t t,
                              SuperBlockOrder order, int span) {
    const size_t bytes = kiln_quant_block_bytes(type);
    const int64_t superBlocks = blockCount / 8;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float summs = 0, total = 0, accMin = 0;
    SuperBlock k;
    for (int64_t b = 0; b < superBlocks; b++) {
        const int64_t block = t * superBlocks + b;
        const int8_t *q8 = a.kValues + block * KILN_QK_K;
        const int16_t *bsums = a.kSums + block * 16;
        const float ad = a.kScales[block];
        decode_super_block(type, w + b * bytes, &k);
        if (order == ORDER_ROWS) {
            // Each span's whole integer sum, one FMA by d·d_a; the mins' chain subtracted at the end.
            const float d = k.d * ad, dmin = k.dmin * ad;
            for (int s0 = 0; s0 < 256; s0 += span) {
                int32_t sum = 0;
                for (int e = s0; e < s0 + span; e++) sum += k.scales[e / 16] * k.ints[e] * q8[e];
                total = fmaf((float)sum, d, total);
                accMin = fmaf((float)super_block_min_sum(&k, bsums, s0 / 16, (s0 + span) / 16), dmin, accMin);
            }
            continue;
        }
        int32_t lanes[8];
        super_block_lanes(type, &k, q8, bsums, lanes);
        const int32_t minSum = super_block_min_sum(&k, bsums, 0, 16);
        if (order == ORDER_TILED) {
            // (Σ·d − dmin·mins) with one FMA, then one FMA by d_a (the compiled ggml code contracts it).
            int32_t sum = 0;
            for (int l = 0; l < 8; l++) sum += lanes[l];
            float result = (float)sum * k.d;
            if (k.dmin != 0) result = fmaf(-k.dmin, (float)minSum, result);
            total = fmaf(result, ad, total);
        } else {
            const float d = ad * k.d;
            for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)lanes[l], acc[l]);
            if (k.dmin != 0) summs = fmaf(-ad * k.dmin, (float)minSum, summs);
        }
    }
    if (order == ORDER_ROWS) return total - accMin;
    return order == ORDER_TILED ? total : sum_lanes8(acc) + summs;
}

// One output of a repacked 32-weight type (Q4_0, IQ4_NL): one FMA per block's integer sum.
static float dot_rows_32(int type, const uint8_t *w, int64_t blockCount, KilnQ8Activations a, int64_t t) {
    float acc = 0;
    int32_t ints[32];
    for (int64_t b = 0; b < blockCount; b++) {
        const uint8_t *p = w + b * 18;
        const int64_t block = t * blockCount + b;
        if (type == KILN_QTYPE_Q4_0) ints_q4_0(p, ints);
        else ints_iq4_nl(p + 2, ints);
        const int8_t *q8 = a.values + block * KILN_QK;
        int32_t sum = 0;
        for (int e = 0; e < 32; e++) sum += ints[e] * q8[e];
        acc = fmaf((float)sum, load_f16(p) * a.scales[block], acc);
    }
    return acc;
}

void kiln_quant_matmul_exact(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                             int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                             float *out, int64_t outStride) {
    const TypeRow *row = row_of(type);
    if (!row || row->family == FAMILY_NONE) return;
    // llama.cpp multiplies repacked weights by tokens in groups of four (gemm) and the rest one
    // at a time (gemv); the two sum K-quant spans differently.
    const int64_t grouped = tokenCount - tokenCount % 4;
    // And it multiplies the other K-quants by eight or more tokens with its tiled kernel.
    const int tiled = row->info.blockElements == KILN_QK_K && tokenCount >= 8;
    if (kiln_quant_matmul_kquant_vnni(type, base, rowBytes, firstRow, rowCount, blockCount, a, firstToken, tokenCount, out,
                                      outStride, row->family == FAMILY_ROWS ? row->gemmSpan : 0, grouped, tiled)) {
        return;
    }
    for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
        const uint8_t *w = base + (size_t)r * rowBytes;
        for (int64_t t = firstToken; t < firstToken + tokenCount; t++) {
            float v;
            if (row->info.blockElements == KILN_QK) {
                v = row->family == FAMILY_LANES ? dot_lanes_32(type, w, blockCount, a, t) : dot_rows_32(type, w, blockCount, a, t);
            } else if (row->family == FAMILY_LANES) {
                v = dot_super_blocks(type, w, blockCount, a, t, tiled ? ORDER_TILED : ORDER_LANES, 0);
            } else {
                v = dot_super_blocks(type, w, blockCount, a, t, ORDER_ROWS, t - firstToken < grouped ? row->gemmSpan : KILN_QK_K);
            }
            out[t * outStride + r] = v;
        }
    }
}
