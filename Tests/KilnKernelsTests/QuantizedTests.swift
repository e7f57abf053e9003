import KilnKernels
import KilnTestSupport
import Testing

/// Quantized blocks against a plain-Swift decoding of the GGUF layout. Activation quantization
/// and dequantization must match exactly, and so must dot products: the kernels follow the scalar
/// reference's (llama.cpp's) order of float operations, lane by lane.
@Suite struct QuantizedTests {
    static let types = QuantizationType.allCases

    /// Where each type's f16 scales sit in a block (every other byte may take any value).
    static let halfOffsets: [QuantizationType: [Int]] = [
        .q4_0: [0], .q4_1: [0, 2], .q5_0: [0], .q5_1: [0, 2], .q8_0: [0], .iq4_nl: [0],
        .q2_K: [80, 82], .q3_K: [108], .q4_K: [0, 2], .q5_K: [0, 2], .q6_K: [208], .iq4_xs: [0],
    ]

    /// Weights per "block" in these tests: 32 for the plain F16 and BF16 rows.
    static func span(_ type: QuantizationType) -> Int { max(32, type.blockElements) }

    /// Random but valid blocks (for F16 and BF16, `blocks` × 32 values): f16 scales in a realistic range, every other byte value possible.
    static func randomBlocks(_ type: QuantizationType, blocks: Int, rng: inout SeededGenerator) -> [UInt8] {
        if type == .f16 || type == .bf16 {  // weight-sized values, a few zeros and tiny ones
            return (0..<(blocks * 32)).flatMap { i -> [UInt8] in
                let v = i % 29 == 0 ? 0 : i % 31 == 0 ? 1e-39 : Float.random(in: -0.2...0.2, using: &rng)
                let bits = type == .f16 ? Float16(v).bitPattern : UInt16(v.bitPattern >> 16)
                return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
            }
        }
        var bytes: [UInt8] = []
        for _ in 0..<blocks {
            var block = (0..<type.blockBytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for (i, offset) in halfOffsets[type]!.enumerated() {
                // A K-quant's super-block scale multiplies 6-bit sub-scales: keep it small.
                let magnitude: ClosedRange<Float> = type.blockElements == 256 ? 0.0001...0.002 : (i == 0 ? 0.0005...0.05 : 0.01...0.4)
                let value = Float.random(in: magnitude, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
                block.replaceSubrange(offset..<(offset + 2), with: halfBytes(value))
            }
            bytes += block
        }
        return bytes
    }

    static func halfBytes(_ value: Float) -> [UInt8] {
        let bits = Float16(value).bitPattern
        return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
    }

    static func activations(_ count: Int, rng: inout SeededGenerator) -> [Float] {
        var x = rng.normals(count, scale: 2)
        if count >= 64 { for i in 32..<64 { x[i] = 0 } }  // an all-zero block: d = 0
        if count >= 96 { x[70] = 300 }  // one outlier dominating its block
        return x
    }

    @Test(arguments: QuantizedTests.types) func dequantizeMatchesReference(type: QuantizationType) {
        var rng = SeededGenerator(seed: 31)
        let bytes = Self.randomBlocks(type, blocks: 5, rng: &rng)
        let count = 5 * Self.span(type)
        var out = [Float](repeating: .nan, count: count)
        bytes.withUnsafeBytes { QuantizedOps.dequantize(type, blocks: $0, count: count, into: out.mutableBuffer) }
        #expect(out == Reference.dequantize(type, bytes: bytes))
    }

    @Test func superBlockQuantizationMatchesGGML() {
        var rng = SeededGenerator(seed: 38)
        var x = Self.activations(256 * 3, rng: &rng)
        for i in 256..<512 { x[i] = 0 }  // an all-zero super-block: d = 0
        x[600] = -400  // a negative extreme: the scale's sign follows it
        let q = QuantizedActivations(columns: x.count)
        q.quantize(x.buffer)
        let expected = Reference.quantizeSuperBlocks(x)
        for b in 0..<3 {
            let block = q.superBlock(row: 0, index: b)
            #expect(block.values.map(Int.init) == Array(expected.values[(b * 256)..<(b * 256 + 256)]))
            #expect(block.scale == expected.scales[b])
            #expect(block.sums.map(Int.init) == Array(expected.sums[(b * 16)..<(b * 16 + 16)]))
        }
    }

    @Test func activationQuantizationMatchesLlamaRules() {
        var rng = SeededGenerator(seed: 32)
        let x = Self.activations(32 * 7, rng: &rng)
        let q = QuantizedActivations(columns: x.count)
        q.quantize(x.buffer)
        let expected = Reference.quantizeActivations(x)
        for b in 0..<7 {
            let block = q.block(row: 0, index: b)
            #expect(block.values == Array(expected.values[(b * 32)..<(b * 32 + 32)]))
            #expect(block.scale == expected.scales[b])
            #expect(block.sum == expected.sums[b])
            #expect(Int(block.integerSum) == block.values.reduce(0) { $0 + Int($1) })
        }
    }

    @Test(arguments: QuantizedTests.types, [1, 2, 3, 18, 48])
    func dotMatchesReference(type: QuantizationType, blocks: Int) {
        var rng = SeededGenerator(seed: 33 &+ UInt64(blocks))
        let bytes = Self.randomBlocks(type, blocks: blocks, rng: &rng)
        let x = Self.activations(blocks * Self.span(type), rng: &rng)
        let q = QuantizedActivations(columns: x.count)
        q.quantize(x.buffer)
        let actual = bytes.withUnsafeBytes { QuantizedOps.dot(type, weightRow: $0, activations: q) }
        let expected = Reference.quantizedDot(type, weightRow: bytes, activations: x)
        let weights = Reference.dequantize(type, bytes: bytes)
        let magnitude = zip(weights, x).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
        #expect(actual.bitPattern == expected.bitPattern, "\(actual) vs \(expected)")
        // And it approximates the f32 product within the 8-bit activation rounding: each value moves
        // by at most half a step (max|x| of its block / 127), plus f16 rounding of the scale (2^-11).
        let exact = Reference.dot(weights, x)
        var bound: Float = 0
        let span = type.usesSuperBlockActivations ? 256 : 32  // values sharing an activation scale
        for i in x.indices {
            let block = x[(i / span * span)..<(i / span * span + span)]
            let step = (block.map { abs($0) }.max() ?? 0) / 127
            bound += abs(weights[i]) * (step / 2 + abs(x[i]) / 1024)
        }
        #expect(abs(actual - exact) <= bound * 1.01 + 1e-5 * magnitude)
    }

    /// The batched form (tiles of rows and tokens, rows split over threads) equals the scalar
    /// reference for every (row, token), in the order llama.cpp uses for a batch of that many
    /// tokens: 9 tokens take the tiled K-quant order and groups of four plus one, 6 and 4 the
    /// vec_dot order and groups of four (with two left over for 6); 41 rows by one token is decode's
    /// shape (row tiles plus a tail), 3 tokens gemv only, 8 the tiled order in exactly two groups;
    /// 16 by 7 and 33 by 6 end the 32-weight types' eight-row widened tiles on groups of three and two.
    @Test(arguments: QuantizedTests.types) func matmulMatchesReference(type: QuantizationType) {
        var rng = SeededGenerator(seed: 34)
        for (rows, blocks, tokens) in [(1, 1, 1), (37, 3, 9), (24, 6, 4), (5, 7, 6), (41, 4, 1), (19, 2, 3), (6, 3, 8),
                                       (16, 2, 7), (33, 5, 6)] {
            let columns = blocks * Self.span(type)
            let rowBytes = type.rowBytes(columns: columns)
            let weights = Self.randomBlocks(type, blocks: rows * blocks, rng: &rng)
            let x = Self.activations(tokens * columns, rng: &rng)
            let q = QuantizedActivations(columns: columns, rows: tokens)
            q.quantize(x.buffer, rows: tokens)
            let stride = rows + 3
            var out = [Float](repeating: .nan, count: tokens * stride)
            weights.withUnsafeBytes { w in
                QuantizedOps.matmul(type, weights: w, rows: rows, activations: q, output: out.mutableBuffer, outputStride: stride)
            }
            var differing = 0
            for t in 0..<tokens {
                for r in 0..<rows {
                    let expected = Reference.quantizedDot(type, weightRow: Array(weights[(r * rowBytes)..<((r + 1) * rowBytes)]),
                                                          activations: Array(x[(t * columns)..<((t + 1) * columns)]),
                                                          tokenIndex: t, tokenCount: tokens, matrixRows: rows)
                    if out[t * stride + r].bitPattern != expected.bitPattern { differing += 1 }
                }
            }
            #expect(differing == 0, "\(type) \(rows)x\(columns) by \(tokens) tokens: \(differing) outputs differ")
        }
    }

    /// Each token of a batch of up to `exactBatchTokens` tokens gets the bits it gets alone (what
    /// batched decoding of several sequences relies on); a larger batch is seen to change some,
    /// so the table's limit is not lower than it needs to be.
    @Test(arguments: QuantizedTests.types) func batchesKeepLoneBitsUpToTheTablesLimit(type: QuantizationType) {
        var rng = SeededGenerator(seed: 35)
        let rows = 24, blocks = 4, columns = blocks * Self.span(type)
        let weights = Self.randomBlocks(type, blocks: rows * blocks, rng: &rng)
        var differingWithin = 0, differingBeyond = 0
        for tokens in 2...12 {
            let x = Self.activations(tokens * columns, rng: &rng)
            let batch = QuantizedActivations(columns: columns, rows: tokens)
            batch.quantize(x.buffer, rows: tokens)
            var together = [Float](repeating: .nan, count: tokens * rows)
            weights.withUnsafeBytes { w in
                QuantizedOps.matmul(type, weights: w, rows: rows, activations: batch, output: together.mutableBuffer)
            }
            for t in 0..<tokens {
                let one = QuantizedActivations(columns: columns, rows: 1)
                let row = Array(x[(t * columns)..<((t + 1) * columns)])
                one.quantize(row.buffer, rows: 1)
                var alone = [Float](repeating: .nan, count: rows)
                weights.withUnsafeBytes { w in
                    QuantizedOps.matmul(type, weights: w, rows: rows, activations: one, output: alone.mutableBuffer)
                }
                let differing = (0..<rows).filter { alone[$0].bitPattern != together[t * rows + $0].bitPattern }.count
                if tokens <= type.exactBatchTokens { differingWithin += differing } else { differingBeyond += differing }
            }
        }
        #expect(differingWithin == 0, "\(type): \(differingWithin) products change in batches of up to \(type.exactBatchTokens)")
        if type.exactBatchTokens < 12 {
            #expect(differingBeyond > 0, "\(type) keeps its bits beyond \(type.exactBatchTokens) tokens: the limit could be higher")
        }
    }

    /// Matrices that share an input, dispatched together, give exactly what each gives alone.
    @Test(arguments: [1, 5]) func groupMatchesSeparateProducts(tokens: Int) {
        var rng = SeededGenerator(seed: 36)
        let columns = 96
        let shapes: [(QuantizationType, Int)] = [(.q4_1, 37), (.q8_0, 8), (.q4_0, 21)]
        let weights = shapes.map { Self.randomBlocks($0.0, blocks: $0.1 * columns / 32, rng: &rng) }
        let x = Self.activations(tokens * columns, rng: &rng)
        let q = QuantizedActivations(columns: columns, rows: tokens)
        q.quantize(x.buffer, rows: tokens)
        var grouped = shapes.map { [Float](repeating: .nan, count: tokens * $0.1) }
        var separate = grouped
        weights[0].withUnsafeBytes { w0 in weights[1].withUnsafeBytes { w1 in weights[2].withUnsafeBytes { w2 in
            let raw = [w0, w1, w2]
            let matrices = (0..<3).map { i in
                QuantizedMatrix(type: shapes[i].0, weights: raw[i], rows: shapes[i].1, output: grouped[i].mutableBuffer)
            }
            QuantizedOps.matmul(group: matrices, activations: q)
            for i in 0..<3 {
                QuantizedOps.matmul(shapes[i].0, weights: raw[i], rows: shapes[i].1, activations: q, output: separate[i].mutableBuffer)
            }
        } } }
        #expect(grouped == separate)
    }

    @Test func halfAndBFloatConversions() {
        var rng = SeededGenerator(seed: 35)
        var halves: [UInt16] = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0x7BFF, 0x7C00, 0xFC00, 0x7E00]
        halves += (0..<200).map { _ in UInt16.random(in: 0...0xFFFF, using: &rng) }
        var out = [Float](repeating: 0, count: halves.count)
        halves.withUnsafeBufferPointer { QuantizedOps.convertF16($0, into: out.mutableBuffer, count: halves.count) }
        for (bits, value) in zip(halves, out) {
            let expected = Float(Float16(bitPattern: bits))
            #expect(value == expected || (value.isNaN && expected.isNaN), "f16 \(bits)")
        }
        for value in rng.normals(100, scale: 1000) + [65504, 65520, 1e-7, 6e-8, -0.0] {
            #expect(QuantizedOps.halfBits(value) == Float16(value).bitPattern, "round \(value)")
        }
        let bf: [UInt16] = [0x3F80, 0xC000, 0x7F80, 0x0001]
        out = [Float](repeating: 0, count: 4)
        bf.withUnsafeBufferPointer { QuantizedOps.convertBF16($0, into: out.mutableBuffer, count: 4) }
        #expect(out[0] == 1 && out[1] == -2 && out[2] == .infinity && out[3] == Float(bitPattern: 0x0001_0000))
    }

    @Test func roundToHalfMatchesFloat16() {
        var rng = SeededGenerator(seed: 37)
        let x = rng.normals(257, scale: 100) + [65504, 65520, 1e-8, -0.0, 0.333_333_34]
        var out = [Float](repeating: .nan, count: x.count)
        VectorOps.roundToHalf(x.buffer, into: out.mutableBuffer, count: x.count)
        #expect(out == x.map { Float(Float16($0)) })
        #expect(out[x.count - 1] == 0.333_251_95)  // 0x3555, the nearest half to 1/3
    }

    @Test func usesVNNIOnThisMachine() {
        // The package compiles C with -march=native; on an AVX-512 VNNI CPU the fast path must be in.
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpuinfo.contains("avx512_vnni") && cpuinfo.contains("avx512bw") {
            #expect(QuantizedOps.usesVNNI)
        }
    }
}
