// AVX-512 VNNI kernels for every K-quant: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and IQ4_XS, in all three
// of llama.cpp's orders (quant_types.c explains them; its portable kernels are the reference these
// must equal bit for bit).
//
// A super-block is widened once per weight row into four 512-bit registers of unsigned bytes, in
// the activations' own order (register k holds weights 64k…64k+63), and its scales into one int32
// per lane of four weights. Each token then costs four vpdpbusd and four vpmulld: the exact
// integer sums of four consecutive products, scaled. Types with signed weights are widened to
// w + offset, and the accumulator starts at −offset·(Σ of the four activations), precomputed per
// token, so each lane holds exactly Σ w·a with no extra instruction per row. Only the float steps
// follow the type's order: eight float lanes (vec_dot), one value per super-block (the tiled
// kernel) or one per span of the repacked rows.
#include <math.h>
#include <stdlib.h>

#include "quant_internal.h"

#if KILN_VNNI

typedef struct {
    __m512i u[4];      // weights 64k…64k+63 as unsigned bytes (w + offset)
    // The scales of u[k]: one int32 per lane of four weights, or for the types whose products are
    // summed in pairs (pair_sums) one int16 per pair.
    __m512i scale[4];
    __m256i mins16;    // Q2_K, Q4_K, Q5_K: the min of each 16 weights as int16
    __m256i q6Scales;  // Q6_K: its 16 scales as int16, for the offset 32 taken through the sums
    float d, dmin;
} WideBlock;

// Lane j of register k takes the scale of weights 64k + 4j…: scale index 2k + j/8 of eight.
static inline __m512i scale_index8(int k) {
    const int b = 2 * k;
    return _mm512_setr_epi32(b, b, b, b, b, b, b, b, b + 1, b + 1, b + 1, b + 1, b + 1, b + 1, b + 1, b + 1);
}

// Q2_K and Q3_K registers hold bit pair j of both 128-weight halves: weights 32j + l in the first
// half and 128 + 32j + l in the second, so lane i takes scale 2j + i/4 (i < 8) or 8 + 2j + (i − 8)/4.
static inline __m512i scale_index_split(int j) {
    const int b = 2 * j, h = 8 + 2 * j;
    return _mm512_setr_epi32(b, b, b, b, b + 1, b + 1, b + 1, b + 1, h, h, h, h, h + 1, h + 1, h + 1, h + 1);
}

static inline void spread_scales_split(__m128i bytes, int isSigned, WideBlock *k) {
    const __m512i sc = isSigned ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes);
    for (int j = 0; j < 4; j++) k->scale[j] = _mm512_permutexvar_epi32(scale_index_split(j), sc);
}

// Whether a type's registers are in that split order (their activations are loaded to match).
static inline int split_halves(int type) { return type == KILN_QTYPE_Q2_K || type == KILN_QTYPE_Q3_K; }

// Bit pair j of each of the 64 quant bytes: register j of the split order.
static inline __m512i bit_pair(__m512i qs, int j) {
#if defined(__GFNI__)
    // One bit-matrix product per byte: output bits 0 and 1 are input bits 2j and 2j + 1 (row i of
    // the matrix, selecting output bit i, is byte 7 − i), instead of a shift and a mask.
    const long long rows = (long long)(((uint64_t)(1u << (2 * j)) << 56) | ((uint64_t)(1u << (2 * j + 1)) << 48));
    return _mm512_gf2p8affine_epi64_epi8(qs, _mm512_set1_epi64(rows), 0);
#else
    return _mm512_and_si512(_mm512_srli_epi16(qs, 2 * j), _mm512_set1_epi8(3));
#endif
}

static inline void spread_scales8(__m128i bytes, int isSigned, WideBlock *k) {
    const __m512i sc = isSigned ? _mm512_cvtepi8_epi32(bytes) : _mm512_cvtepu8_epi32(bytes);
    for (int c = 0; c < 4; c++) k->scale[c] = _mm512_permutexvar_epi32(scale_index8(c), sc);
}

// Types whose widened weights stay below 64: vpmaddubsw's pair sums (at most 2·63·128) cannot
// saturate, so a register costs vpmaddubsw + vpdpwssd — the scale multiply folded into the
// accumulation — instead of vpdpbusd + vpmulld + an add. Each int32 lane still holds the same
// four weights' products, so every order's lanes are unchanged.
static inline int pair_sums(int type) {
    return type == KILN_QTYPE_Q2_K || type == KILN_QTYPE_Q4_K || type == KILN_QTYPE_Q5_K || type == KILN_QTYPE_Q6_K;
}

// Unsigned scale bytes as int16 words, sixteen bytes of the register from each of a, b, c, d
// (a word permute, AVX-512 BW: no VBMI needed).
static inline __m512i scale_words(__m128i bytes, int a, int b, int c, int d) {
    const int A = a * 0x10001, B = b * 0x10001, C = c * 0x10001, D = d * 0x10001;
    const __m512i index = _mm512_setr_epi32(A, A, A, A, B, B, B, B, C, C, C, C, D, D, D, D);
    return _mm512_permutexvar_epi16(index, _mm512_castsi256_si512(_mm256_cvtepu8_epi16(bytes)));
}

// The low nibbles of 32 bytes at p in the first half, their high nibbles in the second.
static inline __m512i halves_nibbles(const uint8_t *p) {
    return kiln_nibbles_by_qword(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)), 0xF0);
}

// A byte mask of the bits `lowBit` (first half) and `highBit` (second half) of 32 bytes at p.
static inline __mmask64 halves_bit(const uint8_t *p, int lowBit, int highBit) {
    const __m512i x = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
    const __m512i bits = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << lowBit)), _mm256_set1_epi8((char)(1 << highBit)), 1);
    return _mm512_test_epi8_mask(x, bits);
}

// Q4_K / Q5_K's packed scales and mins as 16 bytes: eight scales, then eight mins (ggml's
// get_scale_min_k4). Scale j < 4 is q[j] & 63, min j < 4 is q[j + 4] & 63; for j ≥ 4 the low
// four bits are q[j + 4]'s low (scale) or high (min) nibble and the top two q[j − 4]'s (scale) or
// q[j]'s (min) top two bits. The 12 bytes are followed by the block's quants, so the 16-byte load
// stays inside the block.
static inline __m128i scales_mins_k4(const uint8_t *q) {
    const __m128i x = _mm_loadu_si128((const __m128i *)q);
    const __m128i low = _mm_shuffle_epi8(x, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i top = _mm_shuffle_epi8(x, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i lowMask = _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
    const __m128i highNibbles = _mm_and_si128(_mm_srli_epi16(low, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i topBits = _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30));  // (b >> 6) << 4
    return _mm_or_si128(_mm_or_si128(_mm_and_si128(low, lowMask), highNibbles), topBits);
}

// Q3_K's sixteen 6-bit scales minus 32 as bytes: low nibbles from bytes 0–7 (scales 0–7, then
// their high nibbles for 8–15), the top two bits from bytes 8–11 (ggml's kmask arithmetic).
static inline __m128i scales_q3_K(const uint8_t *q) {
    // The twelve bytes by two loads, so nothing past the block is read.
    uint32_t top;
    memcpy(&top, q + 8, 4);
    const __m128i x = _mm_insert_epi32(_mm_loadl_epi64((const __m128i *)q), (int)top, 2);
    // Byte i: the low nibble of byte i (i < 8), or the high nibble of byte i − 8.
    const __m128i nibbles = _mm_and_si128(_mm_srlv_epi16(_mm_unpacklo_epi64(x, x), _mm_setr_epi16(0, 0, 0, 0, 4, 4, 4, 4)),
                                          _mm_set1_epi8(0x0F));
    // Byte i's top two bits: bits 2·(i/4)… of byte 8 + i % 4.
    const __m128i tops = _mm_srlv_epi32(_mm_shuffle_epi32(x, 0xAA), _mm_setr_epi32(0, 2, 4, 6));
    const __m128i sc = _mm_ternarylogic_epi32(nibbles, _mm_slli_epi32(tops, 4), _mm_set1_epi8(0x30), 0xF8);  // nibbles | (tops & 0x30)
    return _mm_sub_epi8(sc, _mm_set1_epi8(32));
}

KILN_ALWAYS_INLINE void widen(int type, const uint8_t *p, WideBlock *k) {
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    switch (type) {
    case KILN_QTYPE_Q2_K: {
        // Weights 128h + 32j + l are bits 2j of byte 32h + l.
        const __m512i qs = _mm512_loadu_si512((const void *)(p + 16));
        for (int j = 0; j < 4; j++) k->u[j] = bit_pair(qs, j);
        const __m128i s = _mm_loadu_si128((const __m128i *)p);
        const __m128i scales = _mm_and_si128(s, _mm_set1_epi8(0x0F));
        for (int j = 0; j < 4; j++) k->scale[j] = scale_words(scales, 2 * j, 2 * j + 1, 8 + 2 * j, 9 + 2 * j);
        k->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0F)));
        k->d = _cvtsh_ss(load_u16(p + 80));
        k->dmin = _cvtsh_ss(load_u16(p + 82));
        break;
    }
    case KILN_QTYPE_Q3_K: {
        // Two bits as Q2_K's, plus 4 where the hmask bit 4h + j is set: w + 4.
        const __m512i qs = _mm512_loadu_si512((const void *)(p + 32));
        const __m512i hmask = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
        for (int j = 0; j < 4; j++) {
            // hmask bit j (first half) or 4 + j (second) rotated to bit 2 of its own byte: a
            // 32-bit rotation by 2 − j or −(2 + j) lands there modulo 32 for every byte.
            const __m512i counts = _mm512_inserti64x4(_mm512_set1_epi32((2 - j) & 31), _mm256_set1_epi32((30 - j) & 31), 1);
            const __m512i high = _mm512_rolv_epi32(hmask, counts);
            k->u[j] = _mm512_ternarylogic_epi32(bit_pair(qs, j), high, _mm512_set1_epi8(4), 0xF8);  // low | (high & 4)
        }
        spread_scales_split(scales_q3_K(p + 96), 1, k);
        k->d = _cvtsh_ss(load_u16(p + 108));
        k->dmin = 0;
        break;
    }
    case KILN_QTYPE_Q4_K:
    case KILN_QTYPE_Q5_K: {
        // Weights 64c + l are the low nibbles of bytes 32c + l, 64c + 32 + l their high nibbles;
        // Q5_K's fifth bits are bits 2c and 2c + 1 of its 32 high bytes.
        const uint8_t *qs = p + (type == KILN_QTYPE_Q4_K ? 16 : 48);
        for (int c = 0; c < 4; c++) {
            k->u[c] = halves_nibbles(qs + 32 * c);
            if (type == KILN_QTYPE_Q5_K) {
                k->u[c] = _mm512_mask_add_epi8(k->u[c], halves_bit(p + 16, 2 * c, 2 * c + 1), k->u[c], _mm512_set1_epi8(16));
            }
        }
        const __m128i sm = scales_mins_k4(p + 4);
        for (int c = 0; c < 4; c++) k->scale[c] = scale_words(sm, 2 * c, 2 * c, 2 * c + 1, 2 * c + 1);
        k->mins16 = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(sm, sm));  // each min twice: one per 16 weights
        k->d = _cvtsh_ss(load_u16(p));
        k->dmin = _cvtsh_ss(load_u16(p + 2));
        break;
    }
    case KILN_QTYPE_Q6_K: {
        // Weights 128h + l and 128h + 32 + l: low nibbles of ql bytes 64h + l and 64h + 32 + l, with
        // bits 0–1 and 2–3 of qh byte 32h + l; 128h + 64 + l and 128h + 96 + l: the high nibbles,
        // with bits 4–5 and 6–7.
        for (int h = 0; h < 2; h++) {
            const __m512i ql = _mm512_loadu_si512((const void *)(p + 64 * h));
            const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h)));
            const __m512i lowBits = _mm512_inserti64x4(_mm512_set1_epi8(0x03), _mm256_set1_epi8(0x0C), 1);
            const __m512i highBits = _mm512_inserti64x4(_mm512_set1_epi8(0x30), _mm256_set1_epi8((char)0xC0), 1);
            const __m512i up = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
            const __m512i down = _mm512_inserti64x4(_mm512_set1_epi16(0), _mm256_set1_epi16(2), 1);
            const __m512i hi0 = _mm512_sllv_epi16(_mm512_and_si512(qh, lowBits), up);
            const __m512i hi1 = _mm512_srlv_epi16(_mm512_and_si512(qh, highBits), down);
            k->u[2 * h] = _mm512_ternarylogic_epi32(ql, low4, hi0, 0xEA);  // (ql & 0x0F) | hi0
            k->u[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), low4, hi1, 0xEA);
        }
        const __m128i s = _mm_loadu_si128((const __m128i *)(p + 192));
        k->q6Scales = _mm256_cvtepi8_epi16(s);
        for (int c = 0; c < 4; c++) {
            // Words of 64c + 8m…: scale 4c + m/8, as int16 pairs of one int32 index each.
            const int w = 0x10001 * 4 * c, o = 0x10001;
            const __m512i index = _mm512_setr_epi32(w, w, w, w, w + o, w + o, w + o, w + o, w + 2 * o, w + 2 * o, w + 2 * o, w + 2 * o,
                                                    w + 3 * o, w + 3 * o, w + 3 * o, w + 3 * o);
            k->scale[c] = _mm512_permutexvar_epi16(index, _mm512_castsi256_si512(k->q6Scales));
        }
        k->d = _cvtsh_ss(load_u16(p + 208));
        k->dmin = 0;
        break;
    }
    default: {  // IQ4_XS: grid values + 128 by pshufb, eight signed 6-bit scales
        const __m512i grid = _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)kiln_iq4nl_values),
                                                                  _mm_set1_epi8((char)0x80)));
        const __m512i spread = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
        for (int c = 0; c < 4; c++) {
            // Chunks 2c and 2c + 1 (16 bytes each): [low nibbles, high nibbles] of each.
            const __m512i x = _mm512_permutexvar_epi64(spread, _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p + 8 + 32 * c))));
            k->u[c] = _mm512_shuffle_epi8(grid, kiln_nibbles_by_qword(x, 0xCC));
        }
        // Scale c: nibble c of the four low bytes, bits 2c…2c+1 of the high word above it, minus 32.
        uint32_t low;
        memcpy(&low, p + 4, 4);
        const uint64_t sc = _pdep_u64(low, 0x0F0F0F0F0F0F0F0FULL) | _pdep_u64(load_u16(p + 2), 0x3030303030303030ULL);
        spread_scales8(_mm_sub_epi8(_mm_cvtsi64_si128((long long)sc), _mm_set1_epi8(32)), 1, k);
        k->d = _cvtsh_ss(load_u16(p));
        k->dmin = 0;
        break;
    }
    }
}

// The offset each type's widened weights carry (w + offset), 0 for unsigned weights.
static inline int weight_offset(int type) {
    return type == KILN_QTYPE_Q3_K ? 4 : type == KILN_QTYPE_IQ4_XS ? 128 : 0;
}

// −offset · (Σ of each four consecutive activations) for `count` int8 values: one int32 per four.
// Kept per thread and grown as needed, so decode allocates nothing.
static _Thread_local int32_t *offsetBuffer;
static _Thread_local size_t offsetCapacity;

const int32_t *kiln_offset_sums(const int8_t *values, int64_t count, int offset) {
    const size_t need = (size_t)(count / 4);
    if (need > offsetCapacity) {
        free(offsetBuffer);
        offsetBuffer = (int32_t *)aligned_alloc(64, (need * sizeof(int32_t) + 63) / 64 * 64);
        offsetCapacity = offsetBuffer ? need : 0;
        if (!offsetBuffer) return NULL;
    }
    const __m512i ones = _mm512_set1_epi8(1), factor = _mm512_set1_epi32(-offset);
    int64_t i = 0;
    for (; i + 64 <= count; i += 64) {
        const __m512i q = _mm512_loadu_si512((const void *)(values + i));
        const __m512i quads = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q);
        _mm512_storeu_si512((void *)(offsetBuffer + i / 4), _mm512_mullo_epi32(quads, factor));
    }
    for (; i + 4 <= count; i += 4) offsetBuffer[i / 4] = -offset * (values[i] + values[i + 1] + values[i + 2] + values[i + 3]);
    return offsetBuffer;
}

// Q2_K's and Q3_K's activations in their registers' split order: per super-block, for each j,
// values 32j…32j+31 then 128 + 32j…. Per thread, grown as needed, valid until the next call.
static _Thread_local int8_t *splitBuffer;
static _Thread_local size_t splitCapacity;

static const int8_t *split_activations(const int8_t *values, int64_t superBlocks) {
    const size_t need = (size_t)superBlocks * KILN_QK_K;
    if (need > splitCapacity) {
        free(splitBuffer);
        splitBuffer = (int8_t *)aligned_alloc(64, need);
        splitCapacity = splitBuffer ? need : 0;
        if (!splitBuffer) return NULL;
    }
    for (int64_t b = 0; b < superBlocks; b++) {
        const int8_t *q = values + b * KILN_QK_K;
        int8_t *y = splitBuffer + b * KILN_QK_K;
        for (int j = 0; j < 4; j++) {
            memcpy(y + 64 * j, q + 32 * j, 32);
            memcpy(y + 64 * j + 32, q + 128 + 32 * j, 32);
        }
    }
    return splitBuffer;
}

static inline int32_t reduce256(__m256i v) {
    __m128i r = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
    r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
    return _mm_cvtsi128_si32(r);
}

static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

// Eight int32 vectors' sums as one vector: lane i = Σ v[i].
static inline __m256i reduce8(const __m256i v[8]) {
    __m256i a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
    }
    const __m256i b0 = _mm256_add_epi32(_mm256_unpacklo_epi64(a[0], a[1]), _mm256_unpackhi_epi64(a[0], a[1]));
    const __m256i b1 = _mm256_add_epi32(_mm256_unpacklo_epi64(a[2], a[3]), _mm256_unpackhi_epi64(a[2], a[3]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(b0, b1, 0x20), _mm256_permute2x128_si256(b0, b1, 0x31));
}

enum { GROUP = 4 };  // rows order, one span per super-block: super-blocks reduced together

// Per-token running state of one output.
typedef struct {
    __m256 lanes;       // vec_dot order: the eight float lanes
    float summs;        // vec_dot order: Q5_K's mins chain
    float acc, accMin;  // rows order
    float total;        // tiled order
    // Rows order, whole super-blocks: integer sums (lanes to add) and their scales, waiting to be
    // reduced four at a time, so one transposed reduction serves four super-blocks.
    __m256i pending[2 * GROUP];  // GROUP sums, then GROUP mins
    float pendingD[GROUP], pendingDmin[GROUP];
    int pendingCount;
} Running;

KILN_ALWAYS_INLINE void flush_rows(Running *run) {
    const int n = run->pendingCount;
    if (n == 0) return;
    for (int g = n; g < GROUP; g++) run->pending[g] = run->pending[GROUP + g] = _mm256_setzero_si256();
    int32_t sums[8];
    _mm256_storeu_si256((__m256i *)sums, reduce8(run->pending));
    for (int g = 0; g < n; g++) {
        run->acc = fmaf((float)sums[g], run->pendingD[g], run->acc);
        run->accMin = fmaf((float)sums[GROUP + g], run->pendingDmin[g], run->accMin);
    }
    run->pendingCount = 0;
}

enum { TOKENS_PER_PASS = 8 };

// The four registers' scaled integer sums of one widened super-block and one token's activations
// in register order (`quads`: the offset correction in the same order, NULL for types without one).
KILN_ALWAYS_INLINE void block_scaled(const int type, const WideBlock *k, const int8_t *q8, const int32_t *quads, __m512i scaled[4]) {
    if (pair_sums(type)) {
        for (int c = 0; c < 4; c++) {
            const __m512i act = _mm512_loadu_si512((const void *)(q8 + 64 * c));
            scaled[c] = _mm512_dpwssd_epi32(_mm512_setzero_si512(), _mm512_maddubs_epi16(k->u[c], act), k->scale[c]);
        }
        return;
    }
    for (int c = 0; c < 4; c++) {
        const __m512i start = quads ? _mm512_loadu_si512((const void *)(quads + 16 * c)) : _mm512_setzero_si512();
        const __m512i act = _mm512_loadu_si512((const void *)(q8 + 64 * c));
        scaled[c] = _mm512_mullo_epi32(_mm512_dpbusd_epi32(start, k->u[c], act), k->scale[c]);
    }
}

KILN_ALWAYS_INLINE __m512i block_sums(const int type, const WideBlock *k, const int8_t *q8, const int32_t *quads) {
    if (pair_sums(type)) {
        __m512i sum = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m512i act = _mm512_loadu_si512((const void *)(q8 + 64 * c));
            sum = _mm512_dpwssd_epi32(sum, _mm512_maddubs_epi16(k->u[c], act), k->scale[c]);
        }
        return sum;
    }
    __m512i scaled[4];
    block_scaled(type, k, q8, quads, scaled);
    return _mm512_add_epi32(_mm512_add_epi32(scaled[0], scaled[1]), _mm512_add_epi32(scaled[2], scaled[3]));
}

// One super-block's sum (8 lanes) and mins (8 lanes) for rows_gemv, with its d and dmin.
KILN_ALWAYS_INLINE void rows_block(const int type, const uint8_t *p, const int8_t *q8, const int16_t *kSums,
                                   __m256i *sum, __m256i *mins, float *d, float *dmin) {
    WideBlock k;
    widen(type, p, &k);
    const __m512i all = block_sums(type, &k, q8, NULL);
    *sum = _mm256_add_epi32(_mm512_castsi512_si256(all), _mm512_extracti64x4_epi64(all, 1));
    *mins = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)kSums), k.mins16);
    *d = k.d;
    *dmin = k.dmin;
}

// Rows order for one token over whole super-blocks (Q2_K, Q4_K decode): four super-blocks'
// sums and mins reduced by one transposed reduction; the two FMA chains stay in registers, one
// lane at a time, so no value goes through memory between the integer and the float steps.
KILN_ALWAYS_INLINE float rows_gemv(const int type, const uint8_t *row, size_t bytes, int64_t superBlocks,
                                   KilnQ8Activations a, int64_t token, const int8_t *values) {
    __m128 acc = _mm_setzero_ps(), accMin = _mm_setzero_ps();
    const float *scales = a.kScales + token * superBlocks;
    const int16_t *kSums = a.kSums + token * superBlocks * 16;
    int64_t b0 = 0;
    for (; b0 + 4 <= superBlocks; b0 += 4) {
        __m256i v[8];
        float d[4], dmin[4];
        for (int g = 0; g < 4; g++) {
            const int64_t b = b0 + g;
            rows_block(type, row + b * bytes, values + b * KILN_QK_K, kSums + b * 16, &v[g], &v[4 + g], &d[g], &dmin[g]);
        }
        const __m256 f = _mm256_cvtepi32_ps(reduce8(v));
        const __m128 ad = _mm_loadu_ps(scales + b0);
        __m128 sums = _mm256_castps256_ps128(f), mins = _mm256_extractf128_ps(f, 1);
        __m128 dv = _mm_mul_ps(_mm_setr_ps(d[0], d[1], d[2], d[3]), ad);
        __m128 dminv = _mm_mul_ps(_mm_setr_ps(dmin[0], dmin[1], dmin[2], dmin[3]), ad);
        for (int g = 0; g < 4; g++) {
            acc = _mm_fmadd_ss(sums, dv, acc);
            accMin = _mm_fmadd_ss(mins, dminv, accMin);
            sums = _mm_permute_ps(sums, 0x39), mins = _mm_permute_ps(mins, 0x39);
            dv = _mm_permute_ps(dv, 0x39), dminv = _mm_permute_ps(dminv, 0x39);
        }
    }
    for (; b0 < superBlocks; b0++) {
        __m256i sum, mins;
        float d, dmin;
        rows_block(type, row + b0 * bytes, values + b0 * KILN_QK_K, kSums + b0 * 16, &sum, &mins, &d, &dmin);
        acc = _mm_fmadd_ss(_mm_set_ss((float)reduce256(sum)), _mm_set_ss(d * scales[b0]), acc);
        accMin = _mm_fmadd_ss(_mm_set_ss((float)reduce256(mins)), _mm_set_ss(dmin * scales[b0]), accMin);
    }
    return _mm_cvtss_f32(acc) - _mm_cvtss_f32(accMin);
}

// vec_dot's lanes order for one token (Q3_K, Q5_K, Q6_K, IQ4_XS decode), state in registers.
KILN_ALWAYS_INLINE float lanes_gemv(const int type, const uint8_t *row, size_t bytes, int64_t superBlocks,
                                    KilnQ8Activations a, int64_t token, const int8_t *values, const int32_t *offsets) {
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t b = 0; b < superBlocks; b++) {
        const int64_t block = token * superBlocks + b;
        WideBlock k;
        widen(type, row + b * bytes, &k);
        const __m512i all = block_sums(type, &k, values + b * KILN_QK_K, offsets ? offsets + b * 64 : NULL);
        __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(all), _mm512_extracti64x4_epi64(all, 1));
        const float ad = a.kScales[block];
        if (type == KILN_QTYPE_Q6_K || type == KILN_QTYPE_Q5_K) {
            const __m256i bsums = _mm256_loadu_si256((const __m256i *)(a.kSums + block * 16));
            if (type == KILN_QTYPE_Q6_K) lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(_mm256_madd_epi16(bsums, k.q6Scales), 5));
            else summs = fmaf(-ad * k.dmin, (float)reduce256(_mm256_madd_epi16(bsums, k.mins16)), summs);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(ad * k.d), _mm256_cvtepi32_ps(lanes), acc);
    }
    return hsum8(acc) + summs;
}

// Sixteen int32 vectors' sums as one vector: lane i = Σ v[i].
static inline __m512i reduce16(const __m512i v[16]) {
    __m512i first, second;
    kiln_reduce_halves16(v, &first, &second);
    return _mm512_add_epi32(first, second);
}

// Q4_K's gemm order for one row and a group of four tokens (prefill): per super-block, each
// token's four 64-weight spans one FMA each. The 4 × 4 span sums come from one transposed
// reduction, span-major, so the four tokens' chains run as one four-lane vector chain.
KILN_ALWAYS_INLINE void rows_gemm4_q4_K(const WideBlock *wide, int64_t superBlocks, KilnQ8Activations a, int64_t t0,
                                        const int8_t *values, int64_t valueBase, float *out, int64_t outStride, int64_t r) {
    __m128 acc = _mm_setzero_ps(), accMin = _mm_setzero_ps();
    for (int64_t b = 0; b < superBlocks; b++) {
        const WideBlock k = wide[b];
        __m512i v[16];
        __m256i m[4];
        float ad[4];
        for (int t = 0; t < 4; t++) {
            const int64_t block = (t0 + t) * superBlocks + b;
            __m512i scaled[4];
            block_scaled(KILN_QTYPE_Q4_K, &k, values + (block - valueBase) * KILN_QK_K, NULL, scaled);
            for (int c = 0; c < 4; c++) v[4 * c + t] = scaled[c];
            m[t] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(a.kSums + block * 16)), k.mins16);
            ad[t] = a.kScales[block];
        }
        const __m512 sums = _mm512_cvtepi32_ps(reduce16(v));
        // Min lanes 2c, 2c + 1 of each token are span c: pairwise sums, then span-major.
        const __m256i h01 = _mm256_hadd_epi32(m[0], m[1]), h23 = _mm256_hadd_epi32(m[2], m[3]);
        const __m256 even = _mm256_cvtepi32_ps(_mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(h01), _mm256_castsi256_ps(h23), 0x88)));
        const __m256 odd = _mm256_cvtepi32_ps(_mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(h01), _mm256_castsi256_ps(h23), 0xDD)));
        const __m128 adv = _mm_loadu_ps(ad);
        const __m128 d = _mm_mul_ps(_mm_set1_ps(k.d), adv), dmin = _mm_mul_ps(_mm_set1_ps(k.dmin), adv);
        acc = _mm_fmadd_ps(_mm512_castps512_ps128(sums), d, acc);
        accMin = _mm_fmadd_ps(_mm256_castps256_ps128(even), dmin, accMin);
        acc = _mm_fmadd_ps(_mm512_extractf32x4_ps(sums, 1), d, acc);
        accMin = _mm_fmadd_ps(_mm256_castps256_ps128(odd), dmin, accMin);
        acc = _mm_fmadd_ps(_mm512_extractf32x4_ps(sums, 2), d, acc);
        accMin = _mm_fmadd_ps(_mm256_extractf128_ps(even, 1), dmin, accMin);
        acc = _mm_fmadd_ps(_mm512_extractf32x4_ps(sums, 3), d, acc);
        accMin = _mm_fmadd_ps(_mm256_extractf128_ps(odd, 1), dmin, accMin);
    }
    float result[4];
    _mm_storeu_ps(result, _mm_sub_ps(acc, accMin));
    for (int t = 0; t < 4; t++) out[(t0 + t) * outStride + r] = result[t];
}

// A batch reads each row's super-blocks once per pass of tokens: the row is widened once into a
// per-thread scratch (about 600 bytes a super-block, in L1 for the rows of small models) and every
// pass reads it from there.
static _Thread_local WideBlock *wideRow;
static _Thread_local size_t wideRowCapacity;

// Room for a row of `superBlocks`; 0 when it cannot be had.
static int wide_row_scratch(int64_t superBlocks) {
    if ((size_t)superBlocks > wideRowCapacity) {
        free(wideRow);
        wideRow = (WideBlock *)aligned_alloc(64, (size_t)superBlocks * sizeof(WideBlock));
        wideRowCapacity = wideRow ? (size_t)superBlocks : 0;
    }
    return wideRow != NULL;
}

KILN_ALWAYS_INLINE const WideBlock *widen_row(const int type, const uint8_t *row, size_t bytes, int64_t superBlocks) {
    for (int64_t b = 0; b < superBlocks; b++) widen(type, row + b * bytes, &wideRow[b]);
    return wideRow;
}

// One type's kernel; `pass` tokens at a time (1 for decode, so its state stays in registers).
KILN_ALWAYS_INLINE int kquant_kernel(const int type, const int pass, const uint8_t *base, size_t rowBytes, int64_t firstRow,
                                     int64_t rowCount, int64_t blockCount, KilnQ8Activations a, int64_t firstToken,
                                     int64_t tokenCount, float *out, int64_t outStride, int gemmSpan, int64_t grouped, int tiled) {
    const size_t bytes = kiln_quant_block_bytes(type);
    const int64_t superBlocks = blockCount / 8;
    const int offset = weight_offset(type);
    // The tokens' activations in the registers' order, from block firstToken · superBlocks on.
    const int8_t *values = a.kValues + firstToken * superBlocks * KILN_QK_K;
    if (split_halves(type)) {
        values = split_activations(values, tokenCount * superBlocks);
        if (!values) return 0;
    }
    const int32_t *offsets = NULL;
    if (offset) {
        offsets = kiln_offset_sums(values, tokenCount * superBlocks * KILN_QK_K, offset);
        if (!offsets) return 0;
    }
    const int rows = gemmSpan > 0;
    if (pass == 1 && !rows && !tiled) {
        for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
            out[firstToken * outStride + r] = lanes_gemv(type, base + (size_t)r * rowBytes, bytes, superBlocks, a, firstToken, values, offsets);
        }
        return 1;
    }
    if (pass == 1 && rows && grouped == 0) {
        for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
            out[firstToken * outStride + r] = rows_gemv(type, base + (size_t)r * rowBytes, bytes, superBlocks, a, firstToken, values);
        }
        return 1;
    }
    // Q4_K's groups of four tokens always read widened rows; other batches of up to four tokens
    // widen each super-block as they go.
    const int widened = tokenCount > 4 || (type == KILN_QTYPE_Q4_K && pass > 1 && grouped >= 4);
    if (widened && !wide_row_scratch(superBlocks)) return 0;
    for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
        const uint8_t *row = base + (size_t)r * rowBytes;
        const WideBlock *wide = widened ? widen_row(type, row, bytes, superBlocks) : NULL;
        int64_t start = firstToken;
        if (type == KILN_QTYPE_Q4_K && pass > 1) {
            for (; start + 4 <= firstToken + grouped; start += 4) {
                rows_gemm4_q4_K(wide, superBlocks, a, start, values, firstToken * superBlocks, out, outStride, r);
            }
        }
        for (int64_t t0 = start; t0 < firstToken + tokenCount; t0 += pass) {
            const int T = (int)(firstToken + tokenCount - t0 < pass ? firstToken + tokenCount - t0 : pass);
            Running run[TOKENS_PER_PASS];
            for (int t = 0; t < T; t++) {
                run[t].lanes = _mm256_setzero_ps();
                run[t].acc = run[t].accMin = run[t].summs = run[t].total = 0;
                run[t].pendingCount = 0;
            }
            for (int64_t b = 0; b < superBlocks; b++) {
                WideBlock k;
                if (wide) k = wide[b];
                else widen(type, row + b * bytes, &k);
                for (int t = 0; t < T; t++) {
                    const int64_t token = t0 + t;
                    const int64_t block = token * superBlocks + b;
                    const int8_t *q8 = values + (block - firstToken * superBlocks) * KILN_QK_K;
                    const __m256i bsums = _mm256_loadu_si256((const __m256i *)(a.kSums + block * 16));
                    const float ad = a.kScales[block];
                    const int32_t *quads = offset ? offsets + (block - firstToken * superBlocks) * 64 : NULL;
                    __m512i scaled[4];
                    block_scaled(type, &k, q8, quads, scaled);
                    if (rows) {
                        // Spans of 64, 128 or 256 weights, each one FMA; the mins' own chain.
                        const int span = token - firstToken < grouped ? gemmSpan : KILN_QK_K;
                        const float d = k.d * ad, dmin = k.dmin * ad;
                        const __m256i mins = _mm256_madd_epi16(bsums, k.mins16);  // lane i: groups 2i, 2i + 1
                        if (span == KILN_QK_K) {
                            const __m512i all = _mm512_add_epi32(_mm512_add_epi32(scaled[0], scaled[1]), _mm512_add_epi32(scaled[2], scaled[3]));
                            Running *x = &run[t];
                            const int g = x->pendingCount++;
                            x->pending[g] = _mm256_add_epi32(_mm512_castsi512_si256(all), _mm512_extracti64x4_epi64(all, 1));
                            x->pending[GROUP + g] = mins;
                            x->pendingD[g] = d;
                            x->pendingDmin[g] = dmin;
                            if (x->pendingCount == GROUP) flush_rows(x);
                        } else {
                            // Span 128 (Q2_K's gemm; Q4_K's groups of four take rows_gemm4_q4_K): the
                            // first halves of the split registers, then the second.
                            const __m512i all = _mm512_add_epi32(_mm512_add_epi32(scaled[0], scaled[1]), _mm512_add_epi32(scaled[2], scaled[3]));
                            const int32_t halves[2] = {reduce256(_mm512_castsi512_si256(all)), reduce256(_mm512_extracti64x4_epi64(all, 1))};
                            const int32_t minHalves[2] = {reduce256(_mm256_blend_epi32(mins, _mm256_setzero_si256(), 0xF0)),
                                                          reduce256(_mm256_blend_epi32(mins, _mm256_setzero_si256(), 0x0F))};
                            for (int h = 0; h < 2; h++) {
                                run[t].acc = fmaf((float)halves[h], d, run[t].acc);
                                run[t].accMin = fmaf((float)minHalves[h], dmin, run[t].accMin);
                            }
                        }
                        continue;
                    }
                    const __m512i all = _mm512_add_epi32(_mm512_add_epi32(scaled[0], scaled[1]), _mm512_add_epi32(scaled[2], scaled[3]));
                    __m256i lanes = _mm256_add_epi32(_mm512_castsi512_si256(all), _mm512_extracti64x4_epi64(all, 1));
                    if (type == KILN_QTYPE_Q6_K) {
                        lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(_mm256_madd_epi16(bsums, k.q6Scales), 5));
                    }
                    const int32_t minSum = type == KILN_QTYPE_Q5_K ? reduce256(_mm256_madd_epi16(bsums, k.mins16)) : 0;
                    if (tiled) {
                        float result = (float)reduce256(lanes) * k.d;
                        if (type == KILN_QTYPE_Q5_K && k.dmin != 0) result = fmaf(-k.dmin, (float)minSum, result);
                        run[t].total = fmaf(result, ad, run[t].total);
                    } else {
                        const float d = ad * k.d;
                        run[t].lanes = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), run[t].lanes);
                        if (type == KILN_QTYPE_Q5_K) run[t].summs = fmaf(-ad * k.dmin, (float)minSum, run[t].summs);
                    }
                }
            }
            for (int t = 0; t < T; t++) {
                float v;
                flush_rows(&run[t]);
                if (rows) v = run[t].acc - run[t].accMin;
                else if (tiled) v = run[t].total;
                else v = hsum8(run[t].lanes) + run[t].summs;
                out[(t0 + t) * outStride + r] = v;
            }
        }
    }
    return 1;
}

#define KQUANT_CASE(TYPE)                                                                                        \
    case TYPE:                                                                                                   \
        return tokenCount == 1 ? kquant_kernel(TYPE, 1, base, rowBytes, firstRow, rowCount, blockCount, a, firstToken, \
                                               tokenCount, out, outStride, gemmSpan, grouped, tiled)                   \
                               : kquant_kernel(TYPE, TOKENS_PER_PASS, base, rowBytes, firstRow, rowCount, blockCount, a, \
                                               firstToken, tokenCount, out, outStride, gemmSpan, grouped, tiled);

int kiln_quant_matmul_kquant_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                                  float *out, int64_t outStride, int gemmSpan, int64_t grouped, int tiled) {
    switch (type) {
        KQUANT_CASE(KILN_QTYPE_Q2_K)
        KQUANT_CASE(KILN_QTYPE_Q3_K)
        KQUANT_CASE(KILN_QTYPE_Q4_K)
        KQUANT_CASE(KILN_QTYPE_Q5_K)
        KQUANT_CASE(KILN_QTYPE_Q6_K)
        KQUANT_CASE(KILN_QTYPE_IQ4_XS)
    default: return 0;
    }
}

#else

int kiln_quant_matmul_kquant_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                                  float *out, int64_t outStride, int gemmSpan, int64_t grouped, int tiled) {
    (void)type, (void)base, (void)rowBytes, (void)firstRow, (void)rowCount, (void)blockCount, (void)a;
    (void)firstToken, (void)tokenCount, (void)out, (void)outStride, (void)gemmSpan, (void)grouped, (void)tiled;
    return 0;
}

#endif
