// im2col / col2im for convolutions, in C so the compiler can vectorize the stride-2 gathers and
// scatters (interleaved access groups), which Swift's loops over pointers do not.
#ifndef KILN_IM2COL_H
#define KILN_IM2COL_H

/// col[(c·kh + ky)·kw + kx][gy·gw + gx] = image[c][gy·s + ky − p][gx·s + kx − p] (0 outside the
/// image), rows `column_stride` apart.
void kiln_im2col(const float *image, long channels, long height, long width, long kernel_height, long kernel_width,
                 long stride, long padding, long grid_height, long grid_width, float *col, long column_stride);

/// The adjoint: image (zeroed first) += every column entry at the pixel its tap reads.
void kiln_col2im(const float *col, long column_stride, long channels, long height, long width, long kernel_height,
                 long kernel_width, long stride, long padding, long grid_height, long grid_width, float *image);

#endif
