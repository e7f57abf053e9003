import CKilnBLAS
import CKilnKernels

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

/// Convolutions as im2col/col2im around OpenBLAS GEMMs, forward and backward. The whole batch
/// goes through one GEMM: image n's columns sit at columns n·G ..< (n+1)·G of one column matrix
/// (G = kernel positions per image), which keeps the GEMMs large enough to run at full speed.
public enum Convolution {
    /// col[(c·kh + ky)·kw + kx][gy·GW + gx] = image[c][gy·s + ky − p][gx·s + kx − p] (0 outside),
    /// rows `columnStride` apart.
    static func im2col(_ g: ConvolutionGeometry, _ image: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>,
                       columnStride: Int) {
        let (channels, height, width) = g.image
        let (gh, gw) = g.grid
        kiln_im2col(image, channels, height, width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, gh, gw, col, columnStride)
    }

    /// The adjoint of im2col: image[c][y][x] = Σ col[…] over every tap that reads it.
    static func col2im(_ g: ConvolutionGeometry, _ col: UnsafePointer<Float>, _ image: UnsafeMutablePointer<Float>,
                       columnStride: Int) {
        let (channels, height, width) = g.image
        let (gh, gw) = g.grid
        kiln_col2im(col, columnStride, channels, height, width, g.kernelHeight, g.kernelWidth, g.stride, g.padding, gh, gw, image)
    }

    /// [batch][channels][spatial] → [channels][batch·spatial] (or back with `inverse`).
    static func interleave(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, batch: Int,
                           channels: Int, spatial: Int, inverse: Bool = false) {
        for n in 0..<batch {
            for c in 0..<channels {
                let a = n * channels * spatial + c * spatial, b = c * batch * spatial + n * spatial
                if inverse {
                    (target + a).update(from: source + b, count: spatial)
                } else {
                    (target + b).update(from: source + a, count: spatial)
                }
            }
        }
    }

    /// One task's buffers for a chunk: the column matrix and the channel-major image block.
    struct ChunkScratch {
        let columns: UnsafeMutablePointer<Float>
        let side: UnsafeMutablePointer<Float>

        init(_ g: ConvolutionGeometry, imagesPerChunk chunk: Int) {
            columns = .allocate(capacity: g.columnRows * chunk * g.columnCount)
            side = .allocate(capacity: max(g.inputChannels, g.outputChannels) * chunk * max(g.columnCount, g.outputHeight * g.outputWidth))
        }

        func release() {
            columns.deallocate()
            side.deallocate()
        }
    }

    /// Images per chunk: chunks of the batch go through im2col and their GEMMs one thread each, so
    /// a chunk's column matrix (~512 KiB) stays in that core's L2 between being written and read.
    static func imagesPerChunk(_ g: ConvolutionGeometry, batchCount: Int, threads: Int) -> Int {
        let perImage = g.columnRows * g.columnCount * MemoryLayout<Float>.size
        let fit = max(1, (512 << 10) / max(perImage, 1))
        // At least two chunks per thread when the batch allows, so uneven chunks balance.
        return max(1, min(fit, batchCount / max(1, 2 * threads)))
    }

    /// Forward pass for `batchCount` images: a convolution (weight [out, in, kh, kw]) or a
    /// transposed convolution (weight [in, out, kh, kw]), plus an optional bias [out].
    /// `imagesPerChunk` overrides the chunking (for tests).
    public static func forward(
        _ g: ConvolutionGeometry, batchCount: Int,
        input: UnsafeBufferPointer<Float>, weight: UnsafeBufferPointer<Float>, bias: UnsafeBufferPointer<Float>?,
        output: UnsafeMutableBufferPointer<Float>, pool: ThreadPool = .shared, imagesPerChunk: Int? = nil
    ) {
        validate(g, batchCount, input.count, weight.count, bias?.count, output.count)
        guard batchCount > 0 else { return }
        _ = BLAS.ownsThreading
        let chunk = imagesPerChunk ?? Self.imagesPerChunk(g, batchCount: batchCount, threads: pool.threadCount)
        let chunks = (batchCount + chunk - 1) / chunk
        let positions = g.columnCount, spatial = g.outputHeight * g.outputWidth
        let x = input.baseAddress!, w = weight.baseAddress!, out = output.baseAddress!, b = bias?.baseAddress
        pool.parallelFor(chunks) { range in
            let scratch = ChunkScratch(g, imagesPerChunk: chunk)
            defer { scratch.release() }
            let (columns, side) = (scratch.columns, scratch.side)
            for c in range {
                let first = c * chunk, images = min(batchCount, first + chunk) - first, width = images * positions
                if g.isTransposed {
                    // col[out·kh·kw, c·H·W] = Wᵀ · x[in, c·H·W]; y_n = col2im(col_n)
                    interleave(x + first * g.inputSize, side, batch: images, channels: g.inputChannels, spatial: positions)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(g.columnRows), Int32(width), Int32(g.inputChannels), 1,
                                w, Int32(g.columnRows), side, Int32(width), 0, columns, Int32(width))
                    for n in 0..<images {
                        col2im(g, columns + n * positions, out + (first + n) * g.outputSize, columnStride: width)
                    }
                } else {
                    // y[out, c·OH·OW] = W[out, in·kh·kw] · im2col(x), then back to [N][out][OH·OW]
                    for n in 0..<images {
                        im2col(g, x + (first + n) * g.inputSize, columns + n * positions, columnStride: width)
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.outputChannels), Int32(width), Int32(g.columnRows), 1,
                                w, Int32(g.columnRows), columns, Int32(width), 0, side, Int32(width))
                    interleave(side, out + first * g.outputSize, batch: images, channels: g.outputChannels, spatial: spatial, inverse: true)
                }
                if let b {
                    for n in first..<(first + images) {
                        for o in 0..<g.outputChannels {
                            let plane = out + n * g.outputSize + o * spatial, value = b[o]
                            for i in 0..<spatial { plane[i] += value }
                        }
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
        biasGradient: UnsafeMutableBufferPointer<Float>?, pool: ThreadPool = .shared, imagesPerChunk: Int? = nil
    ) {
        validate(g, batchCount, input.count, weight.count, nil, outputGradient.count)
        if let inputGradient { requireCount(inputGradient.count, atLeast: batchCount * g.inputSize, "inputGradient") }
        if let weightGradient { requireCount(weightGradient.count, atLeast: g.weightSize, "weightGradient") }
        if let biasGradient { requireCount(biasGradient.count, atLeast: g.outputChannels, "biasGradient") }
        weightGradient?.update(repeating: 0)
        biasGradient?.update(repeating: 0)
        guard batchCount > 0 else { return }
        _ = BLAS.ownsThreading
        let spatial = g.outputHeight * g.outputWidth
        let dyBase = outputGradient.baseAddress!
        if let biasGradient {
            var sums = [Double](repeating: 0, count: g.outputChannels)
            sums.withUnsafeMutableBufferPointer { VectorOps.channelSums(outputGradient, batch: batchCount, channels: g.outputChannels, spatial: spatial, sums: $0) }
            for o in 0..<g.outputChannels { biasGradient[o] = Float(sums[o]) }
        }
        guard inputGradient != nil || weightGradient != nil else { return }
        let chunk = imagesPerChunk ?? Self.imagesPerChunk(g, batchCount: batchCount, threads: pool.threadCount)
        let chunks = (batchCount + chunk - 1) / chunk
        let positions = g.columnCount
        let x = input.baseAddress!, w = weight.baseAddress!
        let dx = inputGradient?.baseAddress, wantsWeight = weightGradient != nil
        // Each task sums its chunks' weight gradients into its own slot; the slots are added at the end.
        let tasks = min(chunks, pool.threadCount)
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: wantsWeight ? tasks * g.weightSize : 1)
        partial.initialize(repeating: 0, count: wantsWeight ? tasks * g.weightSize : 1)
        defer { partial.deallocate() }
        pool.parallelFor(tasks) { taskRange in
            let scratch = ChunkScratch(g, imagesPerChunk: chunk)
            defer { scratch.release() }
            let (columns, side) = (scratch.columns, scratch.side)
            for task in taskRange {
                let dw = partial + task * g.weightSize
                for c in stride(from: task, to: chunks, by: tasks) {
                    let first = c * chunk, images = min(batchCount, first + chunk) - first, width = images * positions
                    if g.isTransposed {
                        // col = im2col(dy) [out·kh·kw, c·H·W]; dx = W · col; dW += x · colᵀ
                        for n in 0..<images {
                            im2col(g, dyBase + (first + n) * g.outputSize, columns + n * positions, columnStride: width)
                        }
                        if wantsWeight {
                            interleave(x + first * g.inputSize, side, batch: images, channels: g.inputChannels, spatial: positions)
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(g.inputChannels), Int32(g.columnRows), Int32(width), 1,
                                        side, Int32(width), columns, Int32(width), 1, dw, Int32(g.columnRows))
                        }
                        if let dx {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(g.inputChannels), Int32(width), Int32(g.columnRows), 1,
                                        w, Int32(g.columnRows), columns, Int32(width), 0, side, Int32(width))
                            interleave(side, dx + first * g.inputSize, batch: images, channels: g.inputChannels, spatial: positions, inverse: true)
                        }
                    } else {
                        // dy as [out, c·OH·OW]; dW += dy · im2col(x)ᵀ; dx = col2im(Wᵀ · dy)
                        interleave(dyBase + first * g.outputSize, side, batch: images, channels: g.outputChannels, spatial: spatial)
                        if wantsWeight {
                            for n in 0..<images {
                                im2col(g, x + (first + n) * g.inputSize, columns + n * positions, columnStride: width)
                            }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(g.outputChannels), Int32(g.columnRows), Int32(width), 1,
                                        side, Int32(width), columns, Int32(width), 1, dw, Int32(g.columnRows))
                        }
                        if let dx {
                            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(g.columnRows), Int32(width), Int32(g.outputChannels), 1,
                                        w, Int32(g.columnRows), side, Int32(width), 0, columns, Int32(width))
                            for n in 0..<images {
                                col2im(g, columns + n * positions, dx + (first + n) * g.inputSize, columnStride: width)
                            }
                        }
                    }
                }
            }
        }
        if let weightGradient {
            let dw = weightGradient.baseAddress!
            for task in 0..<tasks {
                let source = partial + task * g.weightSize
                for i in 0..<g.weightSize { dw[i] += source[i] }
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
