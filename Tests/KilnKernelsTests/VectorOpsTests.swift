import Foundation
import KilnKernels
import KilnTestSupport
import Testing

/// Elementwise kernels against their scalar twins at sizes around the vector width.
/// Tolerances: exact-arithmetic ops 1e-6 relative; exp-based ops 1e-5; erf-based GELU 2e-6 absolute.
@Suite struct VectorOpsTests {
    func run(_ size: Int, seed: UInt64 = 1, _ body: ([Float], [Float]) -> Void) {
        var rng = SeededGenerator(seed: seed &+ UInt64(size))
        body(rng.floats(size, in: -4...4), rng.floats(size, in: -4...4))
    }

    @Test(arguments: vectorEdgeSizes) func addMulScaleAxpy(size: Int) {
        run(size) { a, b in
            var out = [Float](repeating: .nan, count: size)
            VectorOps.add(a.buffer, b.buffer, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.add(a, b)) <= 1e-6)
            VectorOps.mul(a.buffer, b.buffer, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.mul(a, b)) <= 1e-6)
            VectorOps.scale(a.buffer, by: -0.37, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.scale(a, by: -0.37)) <= 1e-6)
            var y = b
            VectorOps.axpy(1.5, a.buffer, y.mutableBuffer, count: size)
            #expect(maxError(y, Reference.axpy(1.5, a, b)) <= 1e-6)
        }
    }

    @Test(arguments: vectorEdgeSizes) func dot(size: Int) {
        run(size) { a, b in
            let expected = Reference.dot(a, b)
            let actual = VectorOps.dot(a.buffer, b.buffer, count: size)
            // Summation order differs: bound by the magnitude of the terms, not of the result.
            let magnitude = zip(a, b).reduce(Float(0)) { $0 + abs($1.0 * $1.1) }
            #expect(abs(actual - expected) <= 1e-6 * max(1, magnitude))
        }
    }

    @Test func dotOfNothingIsZero() {
        let empty: [Float] = []
        #expect(VectorOps.dot(empty.buffer, empty.buffer, count: 0) == 0)
    }

    @Test(arguments: vectorEdgeSizes.filter { $0 > 0 }) func softmax(size: Int) {
        run(size) { a, _ in
            var x = a.map { $0 * 10 }
            if size > 3 { x[2] = -.infinity }
            var out = [Float](repeating: .nan, count: size)
            VectorOps.softmax(x.buffer, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.softmax(x), floor: 1e-3) <= 1e-5)
            #expect(abs(out.reduce(0, +) - 1) <= 1e-5)
        }
    }

    @Test(arguments: vectorEdgeSizes) func maximum(size: Int) {
        run(size) { a, _ in
            #expect(VectorOps.maximum(a.buffer, count: size) == (a.max() ?? -.infinity))
        }
    }

    @Test func softmaxIsStableAndHandlesAllMasked() {
        var out = [Float](repeating: .nan, count: 3)
        let large: [Float] = [1000, 1000, -1000]
        VectorOps.softmax(large.buffer, into: out.mutableBuffer, count: 3)
        #expect(maxError(out, [0.5, 0.5, 0]) <= 1e-6)
        let masked = [Float](repeating: -.infinity, count: 3)
        VectorOps.softmax(masked.buffer, into: out.mutableBuffer, count: 3)
        #expect(out == [0, 0, 0])
    }

    @Test(arguments: vectorEdgeSizes.filter { $0 > 0 }) func norms(size: Int) {
        run(size) { x, w in
            let shifted = x.map { $0 + 3 }
            let bias = w.map { $0 * 0.5 }
            var out = [Float](repeating: .nan, count: size)
            VectorOps.rmsNorm(shifted.buffer, weight: w.buffer, epsilon: 1e-5, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.rmsNorm(shifted, weight: w, epsilon: 1e-5)) <= 1e-5)
            VectorOps.rmsNorm(shifted.buffer, weight: nil, epsilon: 1e-6, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.rmsNorm(shifted, weight: nil, epsilon: 1e-6)) <= 1e-5)
            VectorOps.layerNorm(shifted.buffer, weight: w.buffer, bias: bias.buffer, epsilon: 1e-12,
                                into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.layerNorm(shifted, weight: w, bias: bias, epsilon: 1e-12)) <= 2e-5)
        }
    }

    @Test func layerNormByHand() {
        // x = [1, 3]: mean 2, variance 1 → [−1, 1]·γ + β
        var out = [Float](repeating: 0, count: 2)
        let x: [Float] = [1, 3], gamma: [Float] = [2, 2], beta: [Float] = [1, 1]
        VectorOps.layerNorm(x.buffer, weight: gamma.buffer, bias: beta.buffer, epsilon: 0, into: out.mutableBuffer, count: 2)
        #expect(out == [-1, 3])
    }

    @Test(arguments: vectorEdgeSizes) func activations(size: Int) {
        run(size) { a, b in
            let x = a.map { $0 * 3 }
            var out = [Float](repeating: .nan, count: size)
            VectorOps.silu(x.buffer, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.silu(x), floor: 1e-2) <= 1e-5)
            VectorOps.swiglu(gate: x.buffer, up: b.buffer, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.swiglu(gate: x, up: b), floor: 1e-2) <= 1e-5)
            VectorOps.gelu(x.buffer, approximation: .erf, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.gelu(x, approximation: .erf), floor: 1) <= 2e-6 * 3)
            VectorOps.gelu(x.buffer, approximation: .tanh, into: out.mutableBuffer, count: size)
            #expect(maxError(out, Reference.gelu(x, approximation: .tanh), floor: 1) <= 2e-6 * 3)
        }
    }

    @Test func leanExponentialOfNonPositiveValues() {
        // Every 1/64 from −90 to 0, plus −∞: relative error against Double exp ≤ 3e-7, and 0 below −87.3.
        let x: [Float] = (0...5760).map { -Float($0) / 64 } + [-.infinity]
        var out = [Float](repeating: .nan, count: x.count)
        VectorOps.expOfNonPositive(x.buffer, into: out.mutableBuffer, count: x.count)
        for (v, e) in zip(x, out) {
            if v < -87.3 {
                #expect(e == 0, "e^\(v)")
            } else {
                let exact = Foundation.exp(Double(v))
                #expect(abs(Double(e) - exact) <= 3e-7 * exact, "e^\(v) = \(e), expected \(exact)")
            }
        }
    }

    @Test func softCapBoundsTheValuesAsTanhDoes() {
        let x: [Float] = [-1e6, -120, -30, -1, -1e-3, 0, 1e-3, 1, 29.9, 30, 120, 1e6]
        var out = [Float](repeating: .nan, count: x.count)
        VectorOps.softCap(x.buffer, cap: 30, into: out.mutableBuffer, count: x.count)
        for (v, y) in zip(x, out) {
            let exact = 30 * Foundation.tanh(Double(v) / 30)
            #expect(abs(Double(y) - exact) <= 4e-7 * max(1, abs(exact)), "softCap(\(v)) = \(y), expected \(exact)")
            #expect(abs(y) <= 30)
        }
    }

    @Test func activationsAtExtremes() {
        let x: [Float] = [-100, -20, 0, 20, 100]
        var out = [Float](repeating: .nan, count: 5)
        VectorOps.silu(x.buffer, into: out.mutableBuffer, count: 5)
        #expect(maxError(out, [0, -20 * 2.061e-9, 0, 20, 100], floor: 1e-6) <= 1e-3)
        VectorOps.gelu(x.buffer, approximation: .erf, into: out.mutableBuffer, count: 5)
        #expect(out == [-0, -0, 0, 20, 100])
        VectorOps.gelu([Float.infinity].buffer, approximation: .erf, into: out.mutableBuffer, count: 1)
        #expect(out[0] == .infinity)
    }

    @Test(arguments: [RoPEPairing.adjacent, .halfSplit], [0, 1, 17, 1000])
    func rope(pairing: RoPEPairing, position: Int) {
        var rng = SeededGenerator(seed: UInt64(position))
        let heads = 3, headDimension = 64
        for rotary in [64, 32, 2] {
            var x = rng.floats(heads * headDimension)
            let expected = Reference.rope(x, headCount: heads, headDimension: headDimension, rotaryDimension: rotary,
                                          position: position, base: 100_000, pairing: pairing)
            var cos = [Float](repeating: 0, count: rotary / 2), sin = cos
            VectorOps.ropeAngles(position: position, rotaryDimension: rotary, base: 100_000,
                                 cos: cos.mutableBuffer, sin: sin.mutableBuffer)
            VectorOps.applyRoPE(x.mutableBuffer, headCount: heads, headDimension: headDimension, rotaryDimension: rotary,
                                cos: cos.buffer, sin: sin.buffer, pairing: pairing)
            // The angle advances by repeated Float multiplication (as ggml): error grows with position.
            #expect(maxError(x, expected) <= 1e-6 * Float(max(8, position)))
        }
    }

    @Test func ropeByHand() {
        // One adjacent pair at position 1, dimension 2: angle 1 rad → (cos 1, sin 1) for x = (1, 0).
        var x: [Float] = [1, 0]
        var c: [Float] = [0], s: [Float] = [0]
        VectorOps.ropeAngles(position: 1, rotaryDimension: 2, base: 10_000, cos: c.mutableBuffer, sin: s.mutableBuffer)
        VectorOps.applyRoPE(x.mutableBuffer, headCount: 1, headDimension: 2, rotaryDimension: 2,
                            cos: c.buffer, sin: s.buffer, pairing: .adjacent)
        #expect(maxError(x, [0.540_302_3, 0.841_470_98]) <= 1e-6)
    }

    @Test(arguments: vectorEdgeSizes.filter { $0 > 0 }) func argmaxAndTopK(size: Int) {
        run(size) { a, _ in
            var x = a.map { ($0 * 4).rounded() }  // many ties
            if size > 5 { x[3] = .nan }
            #expect(VectorOps.argmax(x.buffer, count: size) == Reference.argmax(x))
            for k in [1, 5, 40] {
                var indices = [Int32](repeating: -1, count: k), values = [Float](repeating: .nan, count: k)
                let written = VectorOps.topK(x.buffer, count: size, k: k, indices: indices.mutableBuffer,
                                             values: values.mutableBuffer)
                let expected = Reference.topK(x, k: k)
                #expect(written == expected.count)
                #expect(Array(indices.prefix(written)).map(Int.init) == expected.map(\.index))
                #expect(Array(values.prefix(written)) == expected.map(\.value))
            }
        }
    }
}

/// SiLU against bit patterns recorded from llama.cpp's AVX-512 `ggml_v_silu` (x / (1 + e^−x) with
/// `ggml_v_expf`), across saturation, subnormal and sign boundaries: Kiln's Llama feed-forward
/// has to produce the same floats.
@Suite struct LlamaCppActivationTests {
    static let silu: [(Float, UInt32)] = [
        (0x1.9p+6, 0x42c80000), (0x1.5ep+6, 0x42af0000), (0x1.44p+4, 0x41a20000), (0x1.a66666p+1, 0x404baff8),
        (0x1p+0, 0x3f3b26a7), (0x1.f97248p-4, 0x3d8625f3), (0x1.0c6f7ap-20, 0x350637c1), (0x0p+0, 0x00000000),
        (-0x1.0624dep-10, 0xba0301a8), (-0x1p-1, 0xbe414d03), (-0x1p+0, 0xbe89b2b0), (-0x1.6p+1, 0xbe29343a),
        (-0x1.4p+3, 0xb9ee03fb), (-0x1.535c28p+5, 0xa393ce18), (-0x1.6p+6, 0x83354ddc), (-0x1.7cp+6, 0x80000000),
    ]

    @Test func siluMatchesGGMLBits() {
        let x = Self.silu.map(\.0)
        var out = [Float](repeating: .nan, count: x.count)
        VectorOps.silu(x.buffer, into: out.mutableBuffer, count: x.count)
        for (i, (input, bits)) in Self.silu.enumerated() {
            #expect(out[i].bitPattern == bits, "silu(\(input)) = \(out[i]), llama.cpp \(Float(bitPattern: bits))")
        }
    }

    /// The GELU-tanh gate against ggml's own table: `ggml-gelu-table.f16` holds ggml_geglu_split's
    /// output (up = 1) for every finite f16 gate below 10 in magnitude, in bit-pattern order.
    @Test func gegluMatchesGGMLTable() throws {
        let recorded = try Data(contentsOf: Fixtures.url("llm/ggml-gelu-table.f16")).withUnsafeBytes {
            Array($0.bindMemory(to: UInt16.self)).map { Float(Float16(bitPattern: UInt16(littleEndian: $0))) }
        }
        let gates = (0..<65536).map { Float(Float16(bitPattern: UInt16($0))) }.filter { $0.isFinite && abs($0) < 10 }
        #expect(gates.count == recorded.count)
        let ones = [Float](repeating: 1, count: gates.count)
        var out = [Float](repeating: .nan, count: gates.count)
        VectorOps.gegluHalfTable(gate: gates.buffer, up: ones.buffer, into: out.mutableBuffer, count: gates.count)
        let differing = zip(out, recorded).filter { $0.bitPattern != $1.bitPattern }
        #expect(differing.isEmpty, "\(differing.count) gates differ, first \(differing.prefix(3))")
        // Outside (−10, 10) ggml takes 0 or the gate itself; inside, the gate rounds to f16 first,
        // so 9.9999 (f16 10.0) is 10·up, and f32 gates sharing an f16 value share the result.
        let x: [Float] = [-10, -10.5, -1e30, 10, 12.25, 3e4, 9.9999, 0.333_333_3, 0.333_333_34]
        let up: [Float] = [2, 2, 2, 0.5, -1.5, 2, 3, 1, 1]
        var y = [Float](repeating: .nan, count: x.count)
        VectorOps.gegluHalfTable(gate: x.buffer, up: up.buffer, into: y.mutableBuffer, count: x.count)
        #expect(Array(y[0..<6]) == [0, 0, 0, 5, -18.375, 6e4])
        #expect(y[6] == 30 && y[7] == y[8])
    }
}
