import Foundation
import KilnKernels

extension KernelBench {
    /// Fused attention at the three model families' shapes, against the materialized computation:
    /// the scalar reference (Double) and a BLAS version (S = Q·Kᵀ by sgemm, row softmax, P·V by sgemm).
    mutating func attention() {
        struct Case {
            var name: String
            var shape: AttentionShape
            var scale: Float
            var masking: AttentionMasking
        }
        let cases = [
            Case(name: "SmolLM2 prefill, causal", shape: AttentionShape(queryCount: 512, keyCount: 512, headCount: 9, kvHeadCount: 3, headDimension: 64),
                 scale: 0.125, masking: .causal(queryOffset: 0)),
            Case(name: "SmolLM2 decode @512", shape: AttentionShape(queryCount: 1, keyCount: 512, headCount: 9, kvHeadCount: 3, headDimension: 64),
                 scale: 0.125, masking: .causal(queryOffset: 511)),
            Case(name: "MiniLM, bidirectional", shape: AttentionShape(queryCount: 256, keyCount: 256, headCount: 12, headDimension: 32),
                 scale: 1 / 32.0.squareRoot().float, masking: .bidirectional),
            Case(name: "GAN 14×14, batch 64", shape: AttentionShape(batchCount: 64, queryCount: 196, keyCount: 196, headCount: 1, headDimension: 8, valueDimension: 64),
                 scale: 1, masking: .bidirectional),
        ]
        for c in cases {
            let s = c.shape
            var rng = SystemRandomNumberGenerator()
            let q = (0..<s.queryExtent).map { _ in Float.random(in: -1...1, using: &rng) }
            let k = (0..<s.keyExtent).map { _ in Float.random(in: -1...1, using: &rng) }
            let v = (0..<s.valueExtent).map { _ in Float.random(in: -1...1, using: &rng) }
            var out = [Float](repeating: 0, count: s.outputExtent)
            var lse = [Float](repeating: 0, count: s.rowCount)
            let fused = q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
                out.withUnsafeMutableBufferPointer { ob in lse.withUnsafeMutableBufferPointer { lb in
                    time { Attention.forward(shape: s, scale: c.scale, masking: c.masking, query: qb, key: kb, value: vb,
                                             output: ob, logSumExp: lb, pool: pool) }
                } }
            } } }
            let materialized = q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
                out.withUnsafeMutableBufferPointer { ob in
                    time { Self.materializedAttention(s, c.scale, c.masking, qb, kb, vb, ob) }
                }
            } } }
            // The Double reference is slow: time it once.
            let t0 = monotonicSeconds()
            consume(Reference.attention(shape: s, scale: c.scale, masking: c.masking, keyMask: nil, query: q, key: k, value: v))
            let naive = monotonicSeconds() - t0
            let shape = "\(s.batchCount)×\(s.queryCount)q×\(s.keyCount)k, \(s.headCount)/\(s.kvHeadCount)h, d\(s.headDimension)"
            add(BenchRow(group: "attention", kernel: "fused (\(c.name))", shape: shape, threads: threads,
                         microseconds: fused.median * 1e6, throughput: materialized.median / fused.median, unit: "×",
                         baseline: "materialized, BLAS", baselineThroughput: nil, ratio: materialized.median / fused.median))
            add(BenchRow(group: "attention", kernel: "  vs scalar reference", shape: shape, threads: 1,
                         microseconds: naive * 1e6, throughput: naive / fused.median, unit: "×",
                         baseline: "materialized, scalar", baselineThroughput: nil, ratio: naive / fused.median))
            if c.name.hasPrefix("GAN") {
                var dq = q, dk = k, dv = v
                let backward = q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
                    out.withUnsafeBufferPointer { ob in lse.withUnsafeBufferPointer { lb in
                        dq.withUnsafeMutableBufferPointer { dqb in dk.withUnsafeMutableBufferPointer { dkb in dv.withUnsafeMutableBufferPointer { dvb in
                            time { Attention.backward(shape: s, scale: c.scale, masking: c.masking, query: qb, key: kb, value: vb,
                                                      output: ob, logSumExp: lb, outputGradient: ob, queryGradient: dqb,
                                                      keyGradient: dkb, valueGradient: dvb, pool: pool) }
                        } } }
                    } }
                } } }
                let flops = 4.0 * Double(s.batchCount * s.queryCount * s.keyCount) * Double(2 * s.headDimension + s.valueDimension)
                add(BenchRow(group: "attention", kernel: "fused backward (GAN 14×14)", shape: shape, threads: threads,
                             microseconds: backward.median * 1e6, throughput: flops / backward.median / 1e9, unit: "GFLOP/s"))
            }
        }
    }

    /// The obvious attention: per (batch, head) S = Q·Kᵀ (sgemm), mask, softmax each row, O = P·V (sgemm).
    static func materializedAttention(
        _ s: AttentionShape, _ scale: Float, _ masking: AttentionMasking,
        _ q: UnsafeBufferPointer<Float>, _ k: UnsafeBufferPointer<Float>, _ v: UnsafeBufferPointer<Float>,
        _ o: UnsafeMutableBufferPointer<Float>
    ) {
        var scores = [Float](repeating: 0, count: s.queryCount * s.keyCount)
        scores.withUnsafeMutableBufferPointer { p in
            for b in 0..<s.batchCount {
                for h in 0..<s.headCount {
                    let kvh = h / s.groupSize
                    BLAS.gemm(transposeB: .transposed, m: s.queryCount, n: s.keyCount, k: s.headDimension, alpha: scale,
                              a: UnsafeBufferPointer(rebasing: q[(b * s.queryBatchStride + h * s.headDimension)...]), lda: s.queryPositionStride,
                              b: UnsafeBufferPointer(rebasing: k[(b * s.keyBatchStride + kvh * s.headDimension)...]), ldb: s.keyPositionStride,
                              c: p, ldc: s.keyCount)
                    for i in 0..<s.queryCount {
                        let row = UnsafeMutableBufferPointer(rebasing: p[(i * s.keyCount)..<((i + 1) * s.keyCount)])
                        let limit = masking.keyRange(query: i, keyCount: s.keyCount).upperBound
                        for j in limit..<s.keyCount { row[j] = -.infinity }
                        VectorOps.softmax(UnsafeBufferPointer(row), into: row, count: s.keyCount)
                    }
                    BLAS.gemm(m: s.queryCount, n: s.valueDimension, k: s.keyCount, a: UnsafeBufferPointer(p), lda: s.keyCount,
                              b: UnsafeBufferPointer(rebasing: v[(b * s.valueBatchStride + kvh * s.valueDimension)...]), ldb: s.valuePositionStride,
                              c: UnsafeMutableBufferPointer(rebasing: o[(b * s.outputBatchStride + h * s.valueDimension)...]), ldc: s.outputPositionStride)
                }
            }
        }
    }
}

extension Double {
    var float: Float { Float(self) }
}
