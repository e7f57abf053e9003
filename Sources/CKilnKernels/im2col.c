#include "kiln_im2col.h"
#include <string.h>

// The grid positions [*first, *end) for which offset + g·stride lies in [0, size).
static inline void valid_range(long offset, long stride, long size, long count, long *first, long *end) {
    long f = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    long e = size - offset <= 0 ? 0 : (size - offset + stride - 1) / stride;
    if (e > count) e = count;
    if (f > e) f = e;
    *first = f;
    *end = e;
}

void kiln_im2col(const float *image, long channels, long height, long width, long kernel_height, long kernel_width,
                 long stride, long padding, long grid_height, long grid_width, float *col, long column_stride) {
    long row = 0;
    for (long c = 0; c < channels; c++) {
        const float *plane = image + c * height * width;
        for (long ky = 0; ky < kernel_height; ky++) {
            for (long kx = 0; kx < kernel_width; kx++, row++) {
                float *out = col + row * column_stride;
                long first, end;
                valid_range(kx - padding, stride, width, grid_width, &first, &end);
                for (long gy = 0; gy < grid_height; gy++) {
                    long y = gy * stride + ky - padding;
                    float *line = out + gy * grid_width;
                    if (y < 0 || y >= height || first >= end) {
                        memset(line, 0, (size_t)grid_width * sizeof(float));
                        continue;
                    }
                    for (long gx = 0; gx < first; gx++) line[gx] = 0;
                    for (long gx = end; gx < grid_width; gx++) line[gx] = 0;
                    const float *source = plane + y * width + kx - padding;
                    if (stride == 2) {
                        for (long gx = first; gx < end; gx++) line[gx] = source[2 * gx];
                    } else {
                        for (long gx = first; gx < end; gx++) line[gx] = source[gx * stride];
                    }
                }
            }
        }
    }
}

void kiln_col2im(const float *col, long column_stride, long channels, long height, long width, long kernel_height,
                 long kernel_width, long stride, long padding, long grid_height, long grid_width, float *image) {
    memset(image, 0, (size_t)(channels * height * width) * sizeof(float));
    long row = 0;
    for (long c = 0; c < channels; c++) {
        float *plane = image + c * height * width;
        for (long ky = 0; ky < kernel_height; ky++) {
            for (long kx = 0; kx < kernel_width; kx++, row++) {
                const float *source = col + row * column_stride;
                long first, end;
                valid_range(kx - padding, stride, width, grid_width, &first, &end);
                if (first >= end) continue;
                for (long gy = 0; gy < grid_height; gy++) {
                    long y = gy * stride + ky - padding;
                    if (y < 0 || y >= height) continue;
                    float *target = plane + y * width + kx - padding;
                    const float *line = source + gy * grid_width;
                    if (stride == 2) {
                        for (long gx = first; gx < end; gx++) target[2 * gx] += line[gx];
                    } else {
                        for (long gx = first; gx < end; gx++) target[gx * stride] += line[gx];
                    }
                }
            }
        }
    }
}
