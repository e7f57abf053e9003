/// Sizes of a 2-D convolution or transposed convolution over NCHW images, square-free: kernel,
/// stride and padding apply to both axes (kernelHeight/kernelWidth may differ).
///
/// Conv2d maps input (inputChannels × inputHeight × inputWidth) to output
/// (outputChannels × ⌊(H + 2p − k)/s⌋ + 1 × …). ConvTranspose2d is its adjoint and maps input
/// (inputChannels × H × W) to output (outputChannels × (H − 1)·s − 2p + k × …).
public struct ConvolutionGeometry: Sendable, Equatable {
    public let inputChannels: Int
    public let outputChannels: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    public let isTransposed: Bool
    public let outputHeight: Int
    public let outputWidth: Int

    /// Conv2d(inputChannels, outputChannels, kernel, stride, padding) on inputHeight × inputWidth.
    public static func convolution(
        inputChannels: Int, outputChannels: Int, inputHeight: Int, inputWidth: Int,
        kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0
    ) -> ConvolutionGeometry {
        ConvolutionGeometry(inputChannels, outputChannels, inputHeight, inputWidth, kernelHeight, kernelWidth,
                            stride, padding, transposed: false)
    }

    /// ConvTranspose2d(inputChannels, outputChannels, kernel, stride, padding) on inputHeight × inputWidth.
    public static func transposed(
        inputChannels: Int, outputChannels: Int, inputHeight: Int, inputWidth: Int,
        kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0
    ) -> ConvolutionGeometry {
        ConvolutionGeometry(inputChannels, outputChannels, inputHeight, inputWidth, kernelHeight, kernelWidth,
                            stride, padding, transposed: true)
    }

    private init(_ ci: Int, _ co: Int, _ h: Int, _ w: Int, _ kh: Int, _ kw: Int, _ s: Int, _ p: Int, transposed: Bool) {
        kernelRequire(ci > 0 && co > 0, "channel counts must be positive, got \(ci) → \(co)", kernel: "ConvolutionGeometry")
        kernelRequire(h > 0 && w > 0 && kh > 0 && kw > 0, "image and kernel sizes must be positive", kernel: "ConvolutionGeometry")
        kernelRequire(s > 0 && p >= 0, "stride must be positive and padding non-negative", kernel: "ConvolutionGeometry")
        inputChannels = ci
        outputChannels = co
        inputHeight = h
        inputWidth = w
        kernelHeight = kh
        kernelWidth = kw
        stride = s
        padding = p
        isTransposed = transposed
        if transposed {
            outputHeight = (h - 1) * s - 2 * p + kh
            outputWidth = (w - 1) * s - 2 * p + kw
        } else {
            kernelRequire(h + 2 * p >= kh && w + 2 * p >= kw, "kernel larger than the padded image", kernel: "ConvolutionGeometry")
            outputHeight = (h + 2 * p - kh) / s + 1
            outputWidth = (w + 2 * p - kw) / s + 1
        }
        kernelRequire(outputHeight > 0 && outputWidth > 0, "empty output \(outputHeight)×\(outputWidth)", kernel: "ConvolutionGeometry")
    }

    public var inputSize: Int { inputChannels * inputHeight * inputWidth }
    public var outputSize: Int { outputChannels * outputHeight * outputWidth }
    /// Weight elements: [out, in, kh, kw] for a convolution, [in, out, kh, kw] when transposed.
    public var weightSize: Int { inputChannels * outputChannels * kernelHeight * kernelWidth }

    /// The image that im2col reads (the input of a convolution, the output of a transposed one)
    /// and the grid of kernel positions over it.
    var image: (channels: Int, height: Int, width: Int) {
        isTransposed ? (outputChannels, outputHeight, outputWidth) : (inputChannels, inputHeight, inputWidth)
    }
    var grid: (height: Int, width: Int) {
        isTransposed ? (inputHeight, inputWidth) : (outputHeight, outputWidth)
    }
    /// Rows of the column matrix: image channels × kernel taps.
    var columnRows: Int { image.channels * kernelHeight * kernelWidth }
    var columnCount: Int { grid.height * grid.width }
}

/// Convolutions as im2col/col2im around an OpenBLAS GEMM, forward and backward.
public enum Convolution {
    /// col[(c·kh + ky)·kw + kx][gy·GW + gx] = image[c][gy·s + ky − p][gx·s + kx − p] (0 outside).
    static func im2col(_ g: ConvolutionGeometry, _ image: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = g.image
        let (gh, gw) = g.grid
        var row = 0
        for c in 0..<channels {
            let plane = image + c * height * width
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let out = col + row * gh * gw
                    for gy in 0..<gh {
                        let y = gy * g.stride + ky - g.padding
                        let line = out + gy * gw
                        if y < 0 || y >= height {
                            line.update(repeating: 0, count: gw)
                            continue
                        }
                        for gx in 0..<gw {
                            let x = gx * g.stride + kx - g.padding
                            line[gx] = (x >= 0 && x < width) ? plane[y * width + x] : 0
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// The adjoint of im2col: image[c][y][x] += col[…] for every tap that read it.
    /// The image is zeroed first.
    static func col2im(_ g: ConvolutionGeometry, _ col: UnsafePointer<Float>, _ image: UnsafeMutablePointer<Float>) {
        let (channels, height, width) = g.image
        let (gh, gw) = g.grid
        image.update(repeating: 0, count: channels * height * width)
        var row = 0
        for c in 0..<channels {
            let plane = image + c * height * width
            for ky in 0..<g.kernelHeight {
                for kx in 0..<g.kernelWidth {
                    let source = col + row * gh * gw
                    for gy in 0..<gh {
                        let y = gy * g.stride + ky - g.padding
                        if y < 0 || y >= height { continue }
                        for gx in 0..<gw {
                            let x = gx * g.stride + kx - g.padding
                            if x >= 0 && x < width { plane[y * width + x] += source[gy * gw + gx] }
                        }
                    }
                    row += 1
                }
            }
        }
    }

    /// Forward pass for `batchCount` images: a convolution (weight [out, in, kh, kw]) or a
    /// transposed convolution (weight [in, out, kh, kw]), plus an optional bias [out].
    public static func forward(
        _ g: ConvolutionGeometry, batchCount: Int,
        input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>
    ) {
        validate(g, batchCount, input.count, weight.count, bias?.count, output.count)
        guard batchCount > 0 else { return }
        var columns = [Float](repeating: 0, count: g.columnRows * g.columnCount)
        let spatial = g.outputHeight * g.outputWidth
        columns.withUnsafeMutableBufferPointer { col in
            for n in 0..<batchCount {
                let x = UnsafeBufferPointer(rebasing: input[(n * g.inputSize)...])
                let y = UnsafeMutableBufferPointer(rebasing: output[(n * g.outputSize)...])
                if g.isTransposed {
                    // col[out·kh·kw, H·W] = Wᵀ · x[in, H·W]; y = col2im(col)
                    BLAS.gemm(transposeA: .transposed, m: g.columnRows, n: g.columnCount, k: g.inputChannels,
                              a: weight, lda: g.columnRows, b: x, ldb: g.columnCount,
                              c: col, ldc: g.columnCount)
                    col2im(g, col.baseAddress!, y.baseAddress!)
                } else {
                    // y[out, OH·OW] = W[out, in·kh·kw] · im2col(x)
                    im2col(g, x.baseAddress!, col.baseAddress!)
                    BLAS.gemm(m: g.outputChannels, n: g.columnCount, k: g.columnRows,
                              a: weight, lda: g.columnRows, b: UnsafeBufferPointer(col), ldb: g.columnCount,
                              c: y, ldc: g.columnCount)
                }
                if let bias {
                    for o in 0..<g.outputChannels {
                        let plane = y.baseAddress! + o * spatial
                        let b = bias[o]
                        for i in 0..<spatial { plane[i] += b }
                    }
                }
            }
        }
    }

    /// Backward pass: any of inputGradient, weightGradient, biasGradient may be nil to skip it.
    /// Gradients are overwritten (summed over the batch for weight and bias).
    public static func backward(
        _ g: ConvolutionGeometry, batchCount: Int,
        input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>,
        outputGradient: UnsafeBufferPointer<Float>,
        inputGradient: UnsafeMutableBufferPointer<Float>?, weightGradient: UnsafeMutableBufferPointer<Float>?,
        biasGradient: UnsafeMutableBufferPointer<Float>?
    ) {
        validate(g, batchCount, input.count, weight.count, nil, outputGradient.count)
        if let inputGradient { requireCount(inputGradient.count, atLeast: batchCount * g.inputSize, "inputGradient") }
        if let weightGradient { requireCount(weightGradient.count, atLeast: g.weightSize, "weightGradient") }
        if let biasGradient { requireCount(biasGradient.count, atLeast: g.outputChannels, "biasGradient") }
        weightGradient?.update(repeating: 0)
        biasGradient?.update(repeating: 0)
        guard batchCount > 0 else { return }
        var columns = [Float](repeating: 0, count: g.columnRows * g.columnCount)
        let spatial = g.outputHeight * g.outputWidth
        columns.withUnsafeMutableBufferPointer { col in
            let colRead = UnsafeBufferPointer(col)
            for n in 0..<batchCount {
                let x = UnsafeBufferPointer(rebasing: input[(n * g.inputSize)...])
                let dy = UnsafeBufferPointer(rebasing: outputGradient[(n * g.outputSize)...])
                if let biasGradient {
                    for o in 0..<g.outputChannels {
                        var sum: Float = 0
                        for i in 0..<spatial { sum += dy[o * spatial + i] }
                        biasGradient[o] += sum
                    }
                }
                if g.isTransposed {
                    im2col(g, dy.baseAddress!, col.baseAddress!)  // [out·kh·kw, H·W]
                    if let inputGradient {  // dx[in, H·W] = W[in, out·kh·kw] · col
                        BLAS.gemm(m: g.inputChannels, n: g.columnCount, k: g.columnRows,
                                  a: weight, lda: g.columnRows, b: colRead, ldb: g.columnCount,
                                  c: UnsafeMutableBufferPointer(rebasing: inputGradient[(n * g.inputSize)...]),
                                  ldc: g.columnCount)
                    }
                    if let weightGradient {  // dW[in, out·kh·kw] += x[in, H·W] · colᵀ
                        BLAS.gemm(transposeB: .transposed, m: g.inputChannels, n: g.columnRows, k: g.columnCount,
                                  a: x, lda: g.columnCount, b: colRead, ldb: g.columnCount, beta: 1,
                                  c: weightGradient, ldc: g.columnRows)
                    }
                } else {
                    if let weightGradient {  // dW[out, in·kh·kw] += dy[out, OH·OW] · im2col(x)ᵀ
                        im2col(g, x.baseAddress!, col.baseAddress!)
                        BLAS.gemm(transposeB: .transposed, m: g.outputChannels, n: g.columnRows, k: g.columnCount,
                                  a: dy, lda: g.columnCount, b: colRead, ldb: g.columnCount, beta: 1,
                                  c: weightGradient, ldc: g.columnRows)
                    }
                    if let inputGradient {  // dx = col2im(Wᵀ · dy)
                        BLAS.gemm(transposeA: .transposed, m: g.columnRows, n: g.columnCount, k: g.outputChannels,
                                  a: weight, lda: g.columnRows, b: dy, ldb: g.columnCount,
                                  c: col, ldc: g.columnCount)
                        col2im(g, col.baseAddress!, inputGradient.baseAddress! + n * g.inputSize)
                    }
                }
            }
        }
    }

    static func validate(
        _ g: ConvolutionGeometry, _ batchCount: Int, _ inputCount: Int, _ weightCount: Int, _ biasCount: Int?,
        _ outputCount: Int, kernel: StaticString = #function
    ) {
        kernelRequire(batchCount >= 0, "batchCount must be non-negative, got \(batchCount)", kernel: kernel)
        requireCount(inputCount, atLeast: batchCount * g.inputSize, "input", kernel: kernel)
        requireCount(weightCount, atLeast: g.weightSize, "weight", kernel: kernel)
        if let biasCount { requireCount(biasCount, atLeast: g.outputChannels, "bias", kernel: kernel) }
        requireCount(outputCount, atLeast: batchCount * g.outputSize, "output", kernel: kernel)
    }
}
