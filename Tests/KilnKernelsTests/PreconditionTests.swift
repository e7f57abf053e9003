import KilnKernels
import Testing

/// Bad sizes at the public kernel API stop the process with a message naming the kernel and the
/// problem, before any memory is touched. Each case runs in a child process (an exit test).
@Suite struct PreconditionTests {
    static func stderr(_ result: ExitTest.Result?) -> String {
        String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
    }

    @Test func vectorLengthMismatch() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = [Float](repeating: 1, count: 4), b = [Float](repeating: 1, count: 3)
            _ = a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in VectorOps.dot(a, b, count: 4) } }
        }
        #expect(Self.stderr(result).contains("KilnKernels.dot"))
        #expect(Self.stderr(result).contains("b holds 3 elements, needs at least 4"))
    }

    @Test func gemmLeadingDimensionTooSmall() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let a = [Float](repeating: 1, count: 16)
            var c = [Float](repeating: 0, count: 16)
            a.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    BLAS.gemm(m: 4, n: 4, k: 4, a: a, lda: 3, b: a, ldb: 4, c: c, ldc: 4)
                }
            }
        }
        #expect(Self.stderr(result).contains("lda 3 is smaller than A's 4 stored columns"))
    }

    @Test func attentionHeadsMustGroup() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let shape = AttentionShape(queryCount: 1, keyCount: 1, headCount: 9, kvHeadCount: 2, headDimension: 4)
            let x = [Float](repeating: 0, count: 64)
            var o = [Float](repeating: 0, count: 64)
            x.withUnsafeBufferPointer { x in
                o.withUnsafeMutableBufferPointer { o in
                    Attention.forward(shape: shape, scale: 1, query: x, key: x, value: x, output: o)
                }
            }
        }
        #expect(Self.stderr(result).contains("headCount 9 is not a multiple of kvHeadCount 2"))
    }

    @Test func attentionBufferTooShort() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let shape = AttentionShape(queryCount: 4, keyCount: 8, headCount: 2, headDimension: 8)
            let x = [Float](repeating: 0, count: 64)
            var o = [Float](repeating: 0, count: 64)
            x.withUnsafeBufferPointer { x in
                o.withUnsafeMutableBufferPointer { o in
                    Attention.forward(shape: shape, scale: 1, query: x, key: x, value: x, output: o)
                }
            }
        }
        #expect(Self.stderr(result).contains("key holds 64 elements, needs at least 128"))
    }

    @Test func quantizedColumnsMustFillBlocks() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = QuantizedActivations(columns: 100)
        }
        #expect(Self.stderr(result).contains("multiple of 32"))
    }

    @Test func quantizedWeightsTooShort() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let q = QuantizedActivations(columns: 64)
            let x = [Float](repeating: 1, count: 64)
            x.withUnsafeBufferPointer { q.quantize($0) }
            let weights = [UInt8](repeating: 0, count: 79)  // 2 rows of Q4_1 need 80 bytes
            var out = [Float](repeating: 0, count: 2)
            weights.withUnsafeBytes { w in
                out.withUnsafeMutableBufferPointer { o in
                    QuantizedOps.matmul(.q4_1, weights: w, rows: 2, activations: q, output: o)
                }
            }
        }
        #expect(Self.stderr(result).contains("weights (bytes) holds 79 elements, needs at least 80"))
    }

    @Test func convolutionNeedsChannels() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = ConvolutionGeometry.convolution(inputChannels: 0, outputChannels: 4, inputHeight: 8, inputWidth: 8,
                                                kernelHeight: 3, kernelWidth: 3)
        }
        #expect(Self.stderr(result).contains("channel counts must be positive"))
    }
}
