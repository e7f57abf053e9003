import Foundation
import KilnAutograd
import KilnTestSupport
import Testing

/// The SAGAN block in Double, straight from its definition (q, k, v as 1×1 convolutions, softmax
/// over key positions, no scale, y = x + γ·o): the reference for forward and, by central
/// differences in Double, for every gradient.
private func referenceBlock(_ x: [Double], _ p: [[Double]], batch: Int, channels c: Int, positions n: Int) -> [Double] {
    let (qw, qb, kw, kb, vw, vb, gamma) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6][0])
    let d = qb.count
    var y = x
    for b in 0..<batch {
        func project(_ w: [Double], _ bias: [Double], _ outputs: Int) -> [[Double]] {  // [outputs][n]
            var out = [[Double]](repeating: [Double](repeating: 0, count: n), count: outputs)
            for o in 0..<outputs {
                for i in 0..<n {
                    var total = bias[o]
                    for ch in 0..<c { total += w[o * c + ch] * x[(b * c + ch) * n + i] }
                    out[o][i] = total
                }
            }
            return out
        }
        let q = project(qw, qb, d), k = project(kw, kb, d), v = project(vw, vb, c)
        for i in 0..<n {
            let s = (0..<n).map { j in (0..<d).reduce(0) { $0 + q[$1][i] * k[$1][j] } }
            let m = s.max()!
            let e = s.map { Foundation.exp($0 - m) }
            let total = e.reduce(0, +)
            for ch in 0..<c {
                let o = (0..<n).reduce(0) { $0 + e[$1] / total * v[ch][$1] }
                y[(b * c + ch) * n + i] += gamma * o
            }
        }
    }
    return y
}

@Suite struct SelfAttentionBlockTests {
    private func parameters(_ arrays: [[Float]], _ c: Int) -> SelfAttentionParameters {
        let d = arrays[1].count
        let shapes = [[d, c, 1, 1], [d], [d, c, 1, 1], [d], [c, c, 1, 1], [c], [1]]
        let t = zip(shapes, arrays).map { Tensor(shape: $0, data: $1, requiresGradient: true) }
        return SelfAttentionParameters(queryWeight: t[0], queryBias: t[1], keyWeight: t[2], keyBias: t[3],
                                       valueWeight: t[4], valueBias: t[5], gamma: t[6])
    }

    @Test(arguments: ["c7", "c14"])
    func matchesGoldenForward(case name: String) throws {
        let npz = try NPZArchive(contentsOf: Fixtures.url("images/attention_golden.npz"))
        let x = try #require(npz["\(name)_x"])
        let keys = ["q_w", "q_b", "k_w", "k_b", "v_w", "v_b", "gamma"]
        let arrays = try keys.map { try #require(npz["\(name)_\($0)"]).values.map(Float.init) }
        let p = parameters(arrays, x.shape[1])
        let y = Tensor(shape: x.shape, data: x.values.map(Float.init)).selfAttention(p)
        let expected = try #require(npz["\(name)_y"]).values
        #expect(maxError(y.data, expected.map(Float.init), floor: 1) < 2e-5)
        // And the Double reference agrees with PyTorch's golden output.
        let reference = referenceBlock(x.values, try keys.map { try #require(npz["\(name)_\($0)"]).values },
                                       batch: x.shape[0], channels: x.shape[1], positions: x.shape[2] * x.shape[3])
        #expect(zip(reference, expected).map { abs($0 - $1) }.max()! < 1e-9)
    }

    @Test func gradientsMatchDoubleReference() {
        var rng = SeededGenerator(seed: 11)
        let batch = 2, c = 16, h = 3, w = 4, n = h * w, d = 2
        let sizes = [d * c, d, d * c, d, c * c, c, 1]
        var arrays = sizes.map { rng.floats($0).map { $0 * 0.5 } }
        arrays[6] = [0.7]
        let p = parameters(arrays, c)
        let x = Tensor(shape: [batch, c, h, w], data: rng.floats(batch * c * n), requiresGradient: true)
        let r = rng.floats(batch * c * n)
        (x.selfAttention(p) * Tensor(shape: x.shape, data: r)).sum().backward()
        // Central differences of Σ r ⊙ block(x) in Double.
        func loss(_ xs: [Double], _ ps: [[Double]]) -> Double {
            zip(referenceBlock(xs, ps, batch: batch, channels: c, positions: n), r).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        let x64 = x.data.map(Double.init), p64 = arrays.map { $0.map(Double.init) }
        let step = 1e-6
        func check(_ analytic: [Float], _ perturbed: (Int, Double) -> Double) -> Double {
            // The key bias gets (exactly) no gradient: softmax ignores a constant per row. Hence the floor.
            var worst = 0.0, scale = 1e-2
            for i in 0..<analytic.count {
                let numeric = (perturbed(i, step) - perturbed(i, -step)) / (2 * step)
                worst = max(worst, abs(numeric - Double(analytic[i])))
                scale = max(scale, abs(numeric))
            }
            return worst / scale
        }
        #expect(check(x.gradient) { i, e in var v = x64; v[i] += e; return loss(v, p64) } < 1e-4)
        for (k, tensor) in p.all.enumerated() {
            #expect(check(tensor.gradient) { i, e in var q = p64; q[k][i] += e; return loss(x64, q) } < 1e-4, "parameter \(k)")
        }
    }
}
