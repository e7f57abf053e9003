// Quantization: floats into ggml's blocks, with the arithmetic of ggml's reference quantizers
// (the path llama-quantize takes without an importance matrix), so that a model Kiln quantizes is
// byte-identical to llama.cpp's. ggml builds these routines for baseline x86-64: plain single
// float operations in source order, no fused multiply-adds, so contraction is switched off here
// and every expression keeps C's evaluation order and conversions.
//
// The searches below follow ggml's: for a block, try a handful of candidate scales around
// max/nmax, keep the one with the smallest weighted error (or largest Σxl²/Σl² for the symmetric
// types), then quantize the block's sub-block scales themselves to 4, 6 or 8 bits and round every
// weight once more against the scale that was actually stored.
#pragma STDC FP_CONTRACT OFF
#pragma clang fp contract(off)

#include <float.h>
#include <math.h>

#include "quant_internal.h"

// ---- conversions ----------------------------------------------------------------------------

// x86's truncating float → int32 conversion: INT32_MIN for NaN and out-of-range values, which is
// what the compiled ggml code yields where C leaves the conversion undefined.
static inline int32_t truncate_i32(float f) {
    if (!(f > -2147483648.0f && f < 2147483648.0f)) return INT32_MIN;
    return (int32_t)f;
}

// Round half to even through the float adder: 1.5·2^23 pushes the fraction out of the mantissa.
// Defined for |f| ≤ 2^22, as ggml uses it.
static inline int nearest_int(float f) {
    const float shifted = f + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &shifted, 4);
    return (bits & 0x007FFFFF) - 0x00400000;
}

// f32 → f16 bits rounding to nearest even; NaN becomes the quiet NaN 0x7E00 (with its sign).
uint16_t kiln_f32_to_f16_exact(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    const uint32_t a = x & 0x7FFFFFFF;
    if (a > 0x7F800000) return sign | 0x7E00;
    if (a >= 0x47800000) return sign | 0x7C00;  // ≥ 65536 (and infinity): past the largest half
    const int32_t exponent = (int32_t)(a >> 23) - 127;
    uint32_t mantissa = (a & 0x7FFFFF) | 0x800000;
    int shift;  // bits of the 24-bit significand that do not fit
    uint32_t biased;
    if (exponent >= -14) {
        shift = 13;
        biased = (uint32_t)(exponent + 15) << 10;
    } else {
        if (exponent < -25) return sign;  // below half the smallest subnormal
        shift = 13 + (-14 - exponent);
        biased = 0;
    }
    if (a == 0) return sign;
    uint32_t kept = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rest > half || (rest == half && (kept & 1))) kept += 1;
    // `kept` carries the implicit bit for normals; adding it to the biased exponent with the
    // implicit bit removed lets a rounding carry step the exponent (and reach infinity).
    if (biased) return sign | (uint16_t)(biased + kept - 0x400);
    return sign | (uint16_t)kept;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFF) > 0x7F800000) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}

static inline void store_f16(uint8_t *p, float f) {
    const uint16_t h = kiln_f32_to_f16_exact(f);
    memcpy(p, &h, 2);
}

static inline float stored_f16(const uint8_t *p) { return kiln_f16_to_f32_scalar(load_u16(p)); }

void kiln_encode_f16(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) store_f16(y + 2 * i, x[i]);
}

void kiln_encode_bf16(const float *x, uint8_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = f32_to_bf16(x[i]);
        memcpy(y + 2 * i, &h, 2);
    }
}

int64_t kiln_first_nonfinite(const float *x, int64_t count) {
    for (int64_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, x + i, 4);
        if ((bits & 0x7F800000) == 0x7F800000) return i;
    }
    return -1;
}

// ---- legacy 32-weight blocks ----------------------------------------------------------------

// Nibble j < 16 of a block is the low half of byte j, j + 16 its high half.
static void pack_nibbles(const uint8_t *q, uint8_t *out) {
    for (int j = 0; j < 16; j++) out[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
}

// Fifth bits of 32 quants, bit j of a little-endian u32.
static void pack_fifth_bits(const uint8_t *q, uint8_t *out) {
    uint32_t qh = 0;
    for (int j = 0; j < 32; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    memcpy(out, &qh, 4);
}

// The element of largest magnitude (the first of equals), signed.
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

// Symmetric 4/5-bit blocks: d = max / -2^(bits-1), q = trunc(x/d + 2^(bits-1) + ½) capped.
static void encode_symmetric(const float *x, uint8_t *y, int64_t n, int bits) {
    const int offset = 1 << (bits - 1), top = (1 << bits) - 1;
    const int bytes = bits == 4 ? 18 : 22;
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += bytes) {
        const float d = signed_absmax(x, 32) / (float)-offset;
        const float id = d ? 1.0f / d : 0.0f;
        store_f16(y, d);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const int8_t v = (int8_t)truncate_i32(x[j] * id + ((float)offset + 0.5f));
            q[j] = (uint8_t)(v < top ? v : top);
        }
        if (bits == 5) {
            pack_fifth_bits(q, y + 2);
            for (int j = 0; j < 32; j++) q[j] &= 0x0F;
        }
        pack_nibbles(q, y + bytes - 16);
    }
}

// Blocks with a minimum: d = (max - min) / (2^bits - 1), q = trunc((x - min)/d + ½).
static void encode_with_min(const float *x, uint8_t *y, int64_t n, int bits) {
    const int top = (1 << bits) - 1;
    const int bytes = bits == 4 ? 20 : 24;
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += bytes) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < 32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / (float)top;
        const float id = d ? 1.0f / d : 0.0f;
        store_f16(y, d);
        store_f16(y + 2, min);
        uint8_t q[32];
        for (int j = 0; j < 32; j++) {
            const float v = (x[j] - min) * id + 0.5f;
            if (bits == 4) {
                const int8_t t = (int8_t)truncate_i32(v);
                q[j] = (uint8_t)(t < 15 ? t : 15);
            } else {
                q[j] = (uint8_t)truncate_i32(v);  // ggml does not cap Q5_1's quants
            }
        }
        if (bits == 5) {
            pack_fifth_bits(q, y + 4);
            for (int j = 0; j < 32; j++) q[j] &= 0x0F;
        }
        pack_nibbles(q, y + bytes - 16);
    }
}

void kiln_encode_q4_0(const float *x, uint8_t *y, int64_t n) { encode_symmetric(x, y, n, 4); }
void kiln_encode_q5_0(const float *x, uint8_t *y, int64_t n) { encode_symmetric(x, y, n, 5); }
void kiln_encode_q4_1(const float *x, uint8_t *y, int64_t n) { encode_with_min(x, y, n, 4); }
void kiln_encode_q5_1(const float *x, uint8_t *y, int64_t n) { encode_with_min(x, y, n, 5); }

void kiln_encode_q8_0(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += 34) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++) amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]);
        const float d = amax / 127.0f;
        const float id = d ? 1.0f / d : 0.0f;
        store_f16(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)truncate_i32(roundf(x[j] * id));
    }
}

// ---- scale searches -------------------------------------------------------------------------

static const float kGroupMaxEps = 1e-15f;

// Symmetric search with weights x² (ggml's make_qx_quants, rmse type 1, no importance weights):
// L in [0, 2·nmax) holds l + nmax; returns the scale.
static float search_symmetric(int n, int nmax, const float *x, int8_t *L) {
    const float max = signed_absmax(x, n);
    if (fabsf(max) < kGroupMaxEps) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)step) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + (l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q3_K's search (make_q3_quants with rmse): start from max/-nmax, then move single quants while
// that raises Σxl²/Σl² (weights x²), at most five passes. L gets l + nmax.
static float search_q3(int n, int nmax, const float *x, int8_t *L) {
    const float max = signed_absmax(x, n);
    if (fabsf(max) < kGroupMaxEps) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int l = nearest_int(x[i] * sl2 / slx);
                l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
                if (l != L[i]) {
                    slx += w * x[i] * (float)l;
                    sl2 += w * (float)l * (float)l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)l;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Scale-and-minimum search (make_qkx2_quants): x ≈ scale·l − min with l in [0, nmax], minimising
// Σ w·|err| (mad) or Σ w·err² over nstep + 1 candidate scales by weighted least squares.
static float search_scale_min(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *theMin,
                              float rmin, float rdelta, int nstep, int mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *theMin = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        float diff = scale * (float)L[i] + min - x[i];
        diff = mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    uint8_t Laux[32];
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * (float)step + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * (float)l;
            sum_l2 += w * (float)l * (float)l;
            sum_xl += w * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = mad ? fabsf(diff) : diff * diff;
                error += weights[i] * diff;
            }
            if (error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *theMin = -min;
    return scale;
}

// ---- K-quants -------------------------------------------------------------------------------

// Four 2-bit planes: byte l of each 32-byte group holds quants l, l+32, l+64, l+96 of 128.
static void pack_2bit_planes(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < 256; j += 128) {
        for (int l = 0; l < 32; l++) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

// Q2_K: 16 sub-blocks of 16 with 4-bit scales and mins (mad search weighted by |x|).
void kiln_encode_q2_K(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 84) {
        uint8_t L[256], *scales = y;
        float sc[16], mins[16], weights[16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            sc[j] = search_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, 1);
            if (sc[j] > max_scale) max_scale = sc[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            const float iscale = 15.0f / max_scale;
            for (int j = 0; j < 16; j++) scales[j] = (uint8_t)nearest_int(iscale * sc[j]);
            store_f16(y + 80, max_scale / 15.0f);
        } else {
            memset(scales, 0, 16);
            store_f16(y + 80, 0.0f);
        }
        if (max_min > 0) {
            const float iscale = 15.0f / max_min;
            for (int j = 0; j < 16; j++) scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            store_f16(y + 82, max_min / 15.0f);
        } else {
            store_f16(y + 82, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            const float d = stored_f16(y + 80) * (float)(scales[j] & 0xF);
            if (!d) continue;
            const float dm = stored_f16(y + 82) * (float)(scales[j] >> 4);
            for (int i = 0; i < 16; i++) {
                const int l = nearest_int((x[16 * j + i] + dm) / d);
                L[16 * j + i] = (uint8_t)(l < 0 ? 0 : l > 3 ? 3 : l);
            }
        }
        pack_2bit_planes(L, y + 16);
    }
}

// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales, quants in −4…3 (high bit in hmask).
void kiln_encode_q3_K(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 110) {
        int8_t L[256];
        float sc[16];
        uint8_t *hmask = y, *qs = y + 32, *scales = y + 96;
        for (int j = 0; j < 16; j++) sc[j] = search_q3(16, 4, x + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(sc, 16);
        memset(scales, 0, 12);
        if (max_scale) {
            const float iscale = -32.0f / max_scale;
            for (int j = 0; j < 16; j++) {
                int8_t l = (int8_t)nearest_int(iscale * sc[j]);
                l = (int8_t)((l < -32 ? -32 : l > 31 ? 31 : l) + 32);
                if (j < 8) scales[j] = (uint8_t)(l & 0xF);
                else scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l >>= 4;
                scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            store_f16(y + 108, 1 / iscale);
        } else {
            store_f16(y + 108, 0.0f);
        }
        for (int j = 0; j < 16; j++) {
            int8_t s = (int8_t)(j < 8 ? scales[j] & 0xF : scales[j - 8] >> 4);
            s = (int8_t)((s | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
            const float d = stored_f16(y + 108) * (float)s;
            if (!d) continue;
            for (int i = 0; i < 16; i++) {
                const int l = nearest_int(x[16 * j + i] / d);
                L[16 * j + i] = (int8_t)((l < -4 ? -4 : l > 3 ? 3 : l) + 4);
            }
        }
        // The high bit of quant j goes to bit j / 32 of hmask byte j % 32.
        memset(hmask, 0, 32);
        uint8_t Lu[256];
        for (int j = 0; j < 256; j++) {
            Lu[j] = (uint8_t)L[j];
            if (Lu[j] > 3) {
                hmask[j % 32] |= (uint8_t)(1 << (j / 32));
                Lu[j] -= 4;
            }
        }
        pack_2bit_planes(Lu, qs);
    }
}

// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins, searched with weights
// √(mean x²) + |x|, packed by ggml's get_scale_min_k4 layout.
static void encode_scale_min_k4(const float *x, uint8_t *y, int bits, uint8_t *L) {
    const int nmax = (1 << bits) - 1;
    const float rmin = bits == 4 ? -1.0f : -0.5f;
    const int nstep = bits == 4 ? 20 : 15;
    float sc[8], mins[8], weights[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        sc[j] = search_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], rmin, 0.1f, nstep, 0);
        if (sc[j] > max_scale) max_scale = sc[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    uint8_t *scales = y + 4;
    for (int j = 0; j < 8; j++) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * sc[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = ls < 63 ? ls : 63;
        lm = lm < 63 ? lm : 63;
        if (j < 4) {
            scales[j] = ls;
            scales[j + 4] = lm;
        } else {
            scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
            scales[j] |= (uint8_t)((lm >> 4) << 6);
        }
    }
    store_f16(y, max_scale / 63.0f);
    store_f16(y + 2, max_min / 63.0f);
    for (int j = 0; j < 8; j++) {
        int32_t s, m;
        scale_min_k4(j, scales, &s, &m);
        const float d = stored_f16(y) * (float)(uint8_t)s;
        if (!d) continue;
        const float dm = stored_f16(y + 2) * (float)(uint8_t)m;
        for (int i = 0; i < 32; i++) {
            const int l = nearest_int((x[32 * j + i] + dm) / d);
            L[32 * j + i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
        }
    }
}

void kiln_encode_q4_K(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 144) {
        uint8_t L[256];
        encode_scale_min_k4(x, y, 4, L);
        uint8_t *q = y + 16;
        for (int j = 0; j < 256; j += 64, q += 32) {
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
        }
    }
}

void kiln_encode_q5_K(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 176) {
        uint8_t L[256];
        encode_scale_min_k4(x, y, 5, L);
        uint8_t *qh = y + 16, *ql = y + 48;
        memset(qh, 0, 32);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < 256; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= m2;
                }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

// Q6_K: 16 sub-blocks of 16 with signed 8-bit scales, quants in −32…31.
void kiln_encode_q6_K(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 210) {
        int8_t L[256];
        float sc[16];
        for (int j = 0; j < 16; j++) sc[j] = search_symmetric(16, 32, x + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(sc, 16), max_abs = fabsf(max_scale);
        if (max_abs < kGroupMaxEps) {
            memset(y, 0, 210);
            continue;
        }
        int8_t *scales = (int8_t *)(y + 192);
        const float iscale = -128.0f / max_scale;
        store_f16(y + 208, 1 / iscale);
        for (int j = 0; j < 16; j++) {
            const int l = nearest_int(iscale * sc[j]);
            scales[j] = (int8_t)(l < 127 ? l : 127);
        }
        for (int j = 0; j < 16; j++) {
            const float d = stored_f16(y + 208) * (float)scales[j];
            if (!d) continue;
            for (int i = 0; i < 16; i++) {
                const int l = nearest_int(x[16 * j + i] / d);
                L[16 * j + i] = (int8_t)((l < -32 ? -32 : l > 31 ? 31 : l) + 32);
            }
        }
        uint8_t *ql = y, *qh = y + 128;
        for (int j = 0; j < 256; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

// ---- IQ4: a non-linear 16-value grid ---------------------------------------------------------

static int nearest_grid_index(float x) {
    const int8_t *v = kiln_iq4nl_values;
    if (x <= v[0]) return 0;
    if (x >= v[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < v[mid]) hi = mid;
        else lo = mid;
    }
    return x - (float)v[hi - 1] < (float)v[hi] - x ? hi - 1 : hi;
}

// The best scale of one 32-weight block on the grid (weights x²): from max/-127, then 15 nearby
// candidates. 0 for an all-zero block.
static float iq4_block_scale(const float *x) {
    const int8_t *v = kiln_iq4nl_values;
    const float max = signed_absmax(x, 32);
    if (fabsf(max) < kGroupMaxEps) return 0;
    float d = -max / (float)v[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        const float q = (float)v[nearest_grid_index(id * x[j])];
        const float w = x[j] * x[j];
        sumqx += w * q * x[j];
        sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int step = -7; step <= 7; step++) {
        id = (float)(step + v[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const float q = (float)v[nearest_grid_index(id * x[j])];
            const float w = x[j] * x[j];
            sumqx += w * q * x[j];
            sumq2 += w * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

void kiln_encode_iq4_nl(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 32; b++, x += 32, y += 18) {
        const float d = iq4_block_scale(x);
        store_f16(y, d);
        const float id = d ? 1 / d : 0;
        uint8_t L[32];
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)nearest_grid_index(id * x[j]);
        pack_nibbles(L, y + 2);
    }
}

// IQ4_XS: 8 blocks of 32 whose scales are quantized to signed 6 bits of d = -max/32.
void kiln_encode_iq4_xs(const float *x, uint8_t *y, int64_t n) {
    for (int64_t b = 0; b < n / 256; b++, x += 256, y += 136) {
        float sc[8];
        for (int ib = 0; ib < 8; ib++) sc[ib] = iq4_block_scale(x + 32 * ib);
        const float max_scale = signed_absmax(sc, 8);
        const float d = -max_scale / 32;
        store_f16(y, d);
        const float id = d ? 1 / d : 0.0f;
        uint16_t scalesHigh = 0;
        uint8_t *scalesLow = y + 4;
        memset(scalesLow, 0, 4);
        for (int ib = 0; ib < 8; ib++) {
            int l = nearest_int(id * sc[ib]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            const float dl = d * (float)l;
            const float idl = dl ? 1 / dl : 0.0f;
            uint8_t L[32];
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)nearest_grid_index(idl * x[32 * ib + j]);
            pack_nibbles(L, y + 8 + 16 * ib);
            l += 32;
            scalesLow[ib / 2] |= (uint8_t)((l & 0xF) << (4 * (ib % 2)));
            scalesHigh |= (uint16_t)((l >> 4) << (2 * ib));
        }
        memcpy(y + 2, &scalesHigh, 2);
    }
}
