// Helpers shared by the quantized-block kernels (quant.c, quant_types.c); not part of the API.
#ifndef KILN_QUANT_INTERNAL_H
#define KILN_QUANT_INTERNAL_H

#include <string.h>

#include "kiln_quant.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && defined(__F16C__) && \
    defined(__BMI2__)
#define KILN_VNNI 1
#include <immintrin.h>
#else
#define KILN_VNNI 0
#endif

#define KILN_ALWAYS_INLINE static inline __attribute__((always_inline))

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline float load_f16(const uint8_t *p) { return kiln_f16_to_f32_scalar(load_u16(p)); }

/// llama.cpp's pairwise sum of eight float lanes (hsum_float_8).
static inline float sum_lanes8(const float l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/// q8_K activations of `superBlocks` super-blocks of row `row` (quant_types.c).
void kiln_quantize_q8_K(const float *x, int64_t superBlocks, KilnQ8Activations out, int64_t row);

/// The exact-order kernels of every table type without a VNNI tile: `rowCount` weight rows from
/// `firstRow`, `tokenCount` activation rows from `firstToken` (quant_types.c).
void kiln_quant_matmul_exact(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                             int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                             float *out, int64_t outStride);

/// The VNNI kernels of the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS), in
/// kiln_quant_matmul_exact's order: tokens before `grouped` sum repacked types in spans of
/// `gemmSpan` weights, and `tiled` selects the tiled kernel's order for the others. Returns 0,
/// computing nothing, for other types, on CPUs without VNNI, or when a scratch buffer cannot be
/// allocated (quant_kquants_vnni.c).
int kiln_quant_matmul_kquant_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                                  float *out, int64_t outStride, int gemmSpan, int64_t grouped, int tiled);

#if KILN_VNNI
/// −offset · (the sum of each four consecutive values) of `count` int8 activations, one int32 per
/// four, in a per-thread buffer valid until the next call (NULL when it cannot be allocated):
/// vpdpbusd started from it gives Σ (u − offset)·a for weights stored as unsigned u.
const int32_t *kiln_offset_sums(const int8_t *values, int64_t count, int offset);
#endif

#if KILN_VNNI
/// Each byte's low nibble in the qwords whose bit of `highQwords` is clear, its high nibble in
/// the others. With GFNI one bit-matrix product per byte (row i, selecting output bit i, is the
/// matrix's byte 7 − i) replaces a variable shift and a mask, which Zen 4 runs at half rate.
static inline __attribute__((always_inline)) __m512i kiln_nibbles_by_qword(__m512i x, __mmask8 highQwords) {
#if defined(__GFNI__)
    const __m512i matrix = _mm512_mask_blend_epi64(highQwords, _mm512_set1_epi64(0x0102040800000000LL),
                                                   _mm512_set1_epi64(0x1020408000000000LL));
    return _mm512_gf2p8affine_epi64_epi8(x, matrix, 0);
#else
    const __m512i counts = _mm512_mask_blend_epi64(highQwords, _mm512_setzero_si512(), _mm512_set1_epi16(4));
    return _mm512_and_si512(_mm512_srlv_epi16(x, counts), _mm512_set1_epi8(0x0F));
#endif
}
#endif

#if KILN_VNNI
/// Sixteen int32 vectors, each two groups of eight lanes, summed per group and transposed:
/// lane i of `first` is Σ lanes 0–7 of v[i], lane i of `second` Σ lanes 8–15 of v[i].
static inline void kiln_reduce_groups16(const __m512i v[16], __m512i *first, __m512i *second, const int interleaved) {
    __m512i e[8], f[4];
    for (int i = 0; i < 8; i++) {
        e[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    }
    for (int i = 0; i < 4; i++) {
        f[i] = _mm512_add_epi32(_mm512_unpacklo_epi64(e[2 * i], e[2 * i + 1]), _mm512_unpackhi_epi64(e[2 * i], e[2 * i + 1]));
    }
    // f[i]'s 128-bit lanes: v[4i…4i+3]'s partial sums of lanes 0–3, 4–7, 8–11, 12–15.
    const __m512i g01 = interleaved
        ? _mm512_add_epi32(_mm512_shuffle_i64x2(f[0], f[1], 0x44), _mm512_shuffle_i64x2(f[0], f[1], 0xEE))
        : _mm512_add_epi32(_mm512_shuffle_i64x2(f[0], f[1], 0x88), _mm512_shuffle_i64x2(f[0], f[1], 0xDD));
    const __m512i g23 = interleaved
        ? _mm512_add_epi32(_mm512_shuffle_i64x2(f[2], f[3], 0x44), _mm512_shuffle_i64x2(f[2], f[3], 0xEE))
        : _mm512_add_epi32(_mm512_shuffle_i64x2(f[2], f[3], 0x88), _mm512_shuffle_i64x2(f[2], f[3], 0xDD));
    *first = _mm512_shuffle_i64x2(g01, g23, 0x88);
    *second = _mm512_shuffle_i64x2(g01, g23, 0xDD);
}

/// lane i of `first` is Σ lanes 0–7 of v[i], lane i of `second` Σ lanes 8–15 of v[i].
static inline void kiln_reduce_halves16(const __m512i v[16], __m512i *first, __m512i *second) {
    kiln_reduce_groups16(v, first, second, 0);
}

/// lane i of `first` is Σ lanes 0–3 and 8–11 of v[i], lane i of `second` Σ lanes 4–7 and 12–15.
static inline void kiln_reduce_interleaved16(const __m512i v[16], __m512i *first, __m512i *second) {
    kiln_reduce_groups16(v, first, second, 1);
}
#endif

/// Activations rounded to f16 and/or bf16 as llama.cpp converts them for F16 / BF16 weights.
void kiln_convert_half_activations(const float *x, int64_t count, uint16_t *half, uint16_t *bfloat);

/// F16 / BF16 weight rows [rowBegin, rowEnd) of a `matrixRows`-row matrix times `tokenCount`
/// activation rows from `firstToken`, in llama.cpp's order (quant_half.c).
void kiln_half_matmul(int type, const uint8_t *base, size_t rowBytes, int64_t rowBegin, int64_t rowEnd, int64_t matrixRows,
                      int64_t columns,
                      KilnQ8Activations a, int64_t firstToken, int64_t tokenCount, float *out, int64_t outStride);

/// IQ4_NL's and IQ4_XS's 16 grid values (quant_types.c).
extern const int8_t kiln_iq4nl_values[16];

// Row quantizers, `count` floats (whole blocks) each (quant_encode.c).
void kiln_encode_f16(const float *x, uint8_t *y, int64_t count);
void kiln_encode_bf16(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q4_0(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q4_1(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q5_0(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q5_1(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q8_0(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q2_K(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q3_K(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q4_K(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q5_K(const float *x, uint8_t *y, int64_t count);
void kiln_encode_q6_K(const float *x, uint8_t *y, int64_t count);
void kiln_encode_iq4_nl(const float *x, uint8_t *y, int64_t count);
void kiln_encode_iq4_xs(const float *x, uint8_t *y, int64_t count);

// Q4_K / Q5_K's packed 6-bit scales and mins of sub-block j (ggml's get_scale_min_k4).
static inline void scale_min_k4(int j, const uint8_t *q, int32_t *d, int32_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#endif
