// AVX-512 VNNI kernels for the K-quants whose weights widen to unsigned bytes: Q2_K, Q4_K, Q5_K,
// Q6_K. A super-block is widened once per weight row into eight 32-byte chunks and its scales
// into per-lane vectors, then multiplied by up to four tokens: vpdpbusd gives the exact integer
// sums of four consecutive products, the scales are applied in integers, and only the float steps
// follow the type's llama.cpp order (quant_types.c explains the three orders; its portable
// kernels are the reference these must equal bit for bit).
#include <math.h>

#include "quant_internal.h"

#if KILN_VNNI

typedef struct {
    __m256i w[8];      // chunk c: weights 32c…32c+31 as unsigned bytes
    __m256i scale[8];  // chunk c: the scale of each int32 lane (lanes 0–3: first 16 weights)
    int32_t mins[16];  // the min of each 16 weights (0 for types without mins)
    __m256i q6Scales;  // Q6_K: its 16 scales as int16, for the offset 32 taken through the sums
    float d, dmin;
} WideBlock;

static inline __m256i lane_scales(int32_t first, int32_t second) {
    return _mm256_setr_epi32(first, first, first, first, second, second, second, second);
}

static void widen(int type, const uint8_t *p, WideBlock *k) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    int32_t sc[16];
    switch (type) {
    case KILN_QTYPE_Q2_K:
        for (int h = 0; h < 2; h++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * h));
            for (int j = 0; j < 4; j++) {
                k->w[4 * h + j] = _mm256_and_si256(_mm256_srli_epi16(x, 2 * j), _mm256_set1_epi8(3));
            }
        }
        for (int i = 0; i < 16; i++) {
            sc[i] = p[i] & 0xF;
            k->mins[i] = p[i] >> 4;
        }
        k->d = load_f16(p + 80);
        k->dmin = load_f16(p + 82);
        break;
    case KILN_QTYPE_Q4_K:
    case KILN_QTYPE_Q5_K: {
        const uint8_t *qs = p + (type == KILN_QTYPE_Q4_K ? 16 : 48);
        const __m256i high = _mm256_loadu_si256((const __m256i *)(p + 16));
        for (int j = 0; j < 4; j++) {
            const __m256i x = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
            __m256i lo = _mm256_and_si256(x, low4), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
            if (type == KILN_QTYPE_Q5_K) {
                // Bit 2j of each high byte is weight 64j + l's fifth bit, bit 2j + 1 weight 64j + 32 + l's.
                const __m256i one = _mm256_set1_epi8(1);
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * j), one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(high, 2 * j + 1), one), 4));
            }
            k->w[2 * j] = lo;
            k->w[2 * j + 1] = hi;
        }
        for (int j = 0; j < 8; j++) {
            int32_t m;
            scale_min_k4(j, p + 4, &sc[2 * j], &m);
            sc[2 * j + 1] = sc[2 * j];
            k->mins[2 * j] = k->mins[2 * j + 1] = m;
        }
        k->d = load_f16(p);
        k->dmin = load_f16(p + 2);
        break;
    }
    default: {  // Q6_K
        for (int h = 0; h < 2; h++) {
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(p + 64 * h));
            const __m256i ql2 = _mm256_loadu_si256((const __m256i *)(p + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(p + 128 + 32 * h));
            k->w[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                              _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(3)), 4));
            k->w[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql2, low4),
                                              _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(12)), 2));
            k->w[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                              _mm256_and_si256(qh, _mm256_set1_epi8(48)));
            k->w[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql2, 4), low4),
                                              _mm256_srli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8((char)0xC0)), 2));
        }
        const int8_t *s8 = (const int8_t *)(p + 192);
        for (int i = 0; i < 16; i++) {
            sc[i] = s8[i];
            k->mins[i] = 0;
        }
        k->q6Scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p + 192)));
        k->d = load_f16(p + 208);
        k->dmin = 0;
        break;
    }
    }
    for (int c = 0; c < 8; c++) k->scale[c] = lane_scales(sc[2 * c], sc[2 * c + 1]);
}

static inline int32_t reduce_add(__m256i v) {
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

// Per-token running state of one output.
typedef struct {
    __m256 lanes;        // lanes order: the eight float lanes
    float acc, accMin;   // rows order
    float summs;         // lanes order: Q5_K's mins chain
    float total;         // tiled order
} Running;

enum { TOKENS_PER_PASS = 4 };

// IQ4_XS and Q3_K in llama.cpp's vec_dot lane order (below eight tokens): per super-block, lane l
// of 8 holds Σ over the eight 32-weight chunks of scale · (products of elements 4l…4l+3), scaled
// by d_a·d_w with one FMA per lane; the lanes are summed pairwise at the end. Both types' weights
// are signed, so vpdpbusd takes |a| and the weights carrying a's sign.
static inline __m256i signed_dot(__m256i w, const int8_t *q8) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)q8);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(w, x));
}

// IQ4_XS: grid values by pshufb, one 6-bit scale per chunk.
static __m256i iq4_xs_lanes(const uint8_t *p, const int8_t *q8) {
    const __m256i grid = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kiln_iq4nl_values));
    const __m128i low = _mm_set1_epi8(0x0F);
    const uint16_t high = load_u16(p + 2);
    __m256i lanes = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
        const __m128i raw = _mm_loadu_si128((const __m128i *)(p + 8 + 16 * c));
        const __m256i nibbles = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), low), _mm_and_si128(raw, low));
        const __m256i dot = signed_dot(_mm256_shuffle_epi8(grid, nibbles), q8 + 32 * c);
        const int32_t scale = (((p[4 + c / 2] >> (4 * (c % 2))) & 0xF) | (((high >> (2 * c)) & 3) << 4)) - 32;
        lanes = _mm256_add_epi32(lanes, _mm256_mullo_epi32(dot, _mm256_set1_epi32(scale)));
    }
    return lanes;
}

// Q3_K: quants in −4…3 (two bits, plus 4 where the hmask bit is set) and 16 signed scales, so
// lanes 0–3 of a chunk take its first scale and lanes 4–7 its second.
static __m256i q3_K_lanes(const uint8_t *p, const int8_t *q8) {
    const __m256i three = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1), four = _mm256_set1_epi8(4);
    int8_t sc[16];
    kiln_q3_K_scales(p, sc);
    const __m256i hmask = _mm256_loadu_si256((const __m256i *)p);
    __m256i lanes = _mm256_setzero_si256();
    for (int c = 0; c < 8; c++) {
        const __m256i qs = _mm256_loadu_si256((const __m256i *)(p + 32 + 32 * (c / 4)));
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * (c % 4)), three);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hmask, c), one);
        const __m256i w = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(high, 2)), four);
        const int32_t s0 = sc[2 * c], s1 = sc[2 * c + 1];
        const __m256i scale = _mm256_setr_epi32(s0, s0, s0, s0, s1, s1, s1, s1);
        lanes = _mm256_add_epi32(lanes, _mm256_mullo_epi32(signed_dot(w, q8 + 32 * c), scale));
    }
    return lanes;
}

static void signed_lanes_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                              int64_t superBlocks, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount, float *out,
                              int64_t outStride) {
    const int q3 = type == KILN_QTYPE_Q3_K;
    const size_t bytes = q3 ? 110 : 136;
    const size_t dOffset = q3 ? 108 : 0;
    for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
        const uint8_t *row = base + (size_t)r * rowBytes;
        for (int64_t t = firstToken; t < firstToken + tokenCount; t++) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t b = 0; b < superBlocks; b++) {
                const uint8_t *p = row + b * bytes;
                const int64_t block = t * superBlocks + b;
                const int8_t *q8 = a.kValues + block * KILN_QK_K;
                const __m256i lanes = q3 ? q3_K_lanes(p, q8) : iq4_xs_lanes(p, q8);
                const float d = a.kScales[block] * load_f16(p + dOffset);
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
            }
            float l[8];
            _mm256_storeu_ps(l, acc);
            out[t * outStride + r] = sum_lanes8(l) + 0.0f;  // + the (zero) mins' chain, as ggml adds it
        }
    }
}

int kiln_quant_matmul_kquant_vnni(int type, const uint8_t *base, size_t rowBytes, int64_t firstRow, int64_t rowCount,
                                  int64_t blockCount, KilnQ8Activations a, int64_t firstToken, int64_t tokenCount,
                                  float *out, int64_t outStride, int gemmSpan, int64_t grouped, int tiled) {
    if ((type == KILN_QTYPE_Q3_K || type == KILN_QTYPE_IQ4_XS) && !tiled) {
        signed_lanes_vnni(type, base, rowBytes, firstRow, rowCount, blockCount / 8, a, firstToken, tokenCount, out, outStride);
        return 1;
    }
    if (type != KILN_QTYPE_Q2_K && type != KILN_QTYPE_Q4_K && type != KILN_QTYPE_Q5_K && type != KILN_QTYPE_Q6_K) return 0;
    const size_t bytes = kiln_quant_block_bytes(type);
    const int64_t superBlocks = blockCount / 8;
    const int rows = gemmSpan > 0;
    for (int64_t r = firstRow; r < firstRow + rowCount; r++) {
        const uint8_t *row = base + (size_t)r * rowBytes;
        for (int64_t t0 = firstToken; t0 < firstToken + tokenCount; t0 += TOKENS_PER_PASS) {
            const int T = (int)(firstToken + tokenCount - t0 < TOKENS_PER_PASS ? firstToken + tokenCount - t0 : TOKENS_PER_PASS);
            Running run[TOKENS_PER_PASS];
            for (int t = 0; t < T; t++) {
                run[t].lanes = _mm256_setzero_ps();
                run[t].acc = run[t].accMin = run[t].summs = run[t].total = 0;
            }
            for (int64_t b = 0; b < superBlocks; b++) {
                const uint8_t *p = row + b * bytes;
                if (T == 1 && b + 4 < superBlocks) _mm_prefetch((const char *)(p + 4 * bytes), _MM_HINT_T0);
                WideBlock k;
                widen(type, p, &k);
                for (int t = 0; t < T; t++) {
                    const int64_t token = t0 + t;
                    const int64_t block = token * superBlocks + b;
                    const int8_t *q8 = a.kValues + block * KILN_QK_K;
                    const int16_t *bsums = a.kSums + block * 16;
                    const float ad = a.kScales[block];
                    __m256i scaled[8];
                    for (int c = 0; c < 8; c++) {
                        const __m256i g = _mm256_dpbusd_epi32(_mm256_setzero_si256(), k.w[c],
                                                              _mm256_loadu_si256((const __m256i *)(q8 + 32 * c)));
                        scaled[c] = _mm256_mullo_epi32(g, k.scale[c]);
                    }
                    if (rows) {
                        const int span = token - firstToken < grouped ? gemmSpan : KILN_QK_K;
                        const float d = k.d * ad, dmin = k.dmin * ad;
                        for (int s0 = 0; s0 < KILN_QK_K; s0 += span) {
                            __m256i sum = scaled[s0 / 32];
                            for (int c = s0 / 32 + 1; c < (s0 + span) / 32; c++) sum = _mm256_add_epi32(sum, scaled[c]);
                            int32_t minSum = 0;
                            for (int g = s0 / 16; g < (s0 + span) / 16; g++) minSum += k.mins[g] * bsums[g];
                            run[t].acc = fmaf((float)reduce_add(sum), d, run[t].acc);
                            run[t].accMin = fmaf((float)minSum, dmin, run[t].accMin);
                        }
                        continue;
                    }
                    __m256i lanes = scaled[0];
                    for (int c = 1; c < 8; c++) lanes = _mm256_add_epi32(lanes, scaled[c]);
                    if (type == KILN_QTYPE_Q6_K) {
                        const __m256i sums = _mm256_loadu_si256((const __m256i *)bsums);
                        lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(_mm256_madd_epi16(sums, k.q6Scales), 5));
                    }
                    int32_t minSum = 0;
                    if (type == KILN_QTYPE_Q5_K) {
                        for (int g = 0; g < 16; g++) minSum += k.mins[g] * bsums[g];
                    }
                    if (tiled) {
                        float result = (float)reduce_add(lanes) * k.d;
                        if (type == KILN_QTYPE_Q5_K) result = fmaf(-k.dmin, (float)minSum, result);
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
                if (rows) v = run[t].acc - run[t].accMin;
                else if (tiled) v = run[t].total;
                else v = hsum8(run[t].lanes) + run[t].summs;
                out[(t0 + t) * outStride + r] = v;
            }
        }
    }
    return 1;
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
