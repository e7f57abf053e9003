import KilnKernels
import KilnTestSupport
import Testing

/// GEMM/GEMV through OpenBLAS against a Double triple loop; tolerance 1e-5 relative to the sum of
/// |terms| (OpenBLAS blocks and vectorizes the sums differently).
@Suite struct BLASTests {
    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (3, 5, 7), (17, 1, 33), (1, 64, 65), (16, 16, 16), (31, 9, 0), (0, 4, 4)]

    @Test(arguments: [Transpose.none, .transposed], [Transpose.none, .transposed])
    func gemmMatchesReference(transposeA: Transpose, transposeB: Transpose) {
        var rng = SeededGenerator(seed: 7)
        for (m, n, k) in Self.shapes {
            // Strided: every leading dimension is 3 wider than needed.
            let lda = (transposeA == .none ? k : m) + 3
            let ldb = (transposeB == .none ? n : k) + 3
            let ldc = n + 3
            let a = rng.floats(max(1, (transposeA == .none ? m : k) * lda))
            let b = rng.floats(max(1, (transposeB == .none ? k : n) * ldb))
            var c = rng.floats(max(1, m * ldc))
            let expected = Reference.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                                          a: a, lda: lda, b: b, ldb: ldb, beta: 2, c: c, ldc: ldc)
            BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                      a: a.buffer, lda: lda, b: b.buffer, ldb: ldb, beta: 2, c: c.mutableBuffer, ldc: ldc)
            #expect(maxError(c, expected) <= 1e-5 * Float(max(1, k)), "m=\(m) n=\(n) k=\(k)")
        }
    }

    /// Split over a pool: by rows of C when it has more rows than columns, else by columns (a
    /// single query); every split block must land where the unsplit product puts it.
    @Test(arguments: [Transpose.none, .transposed], [Transpose.none, .transposed])
    func gemmSplitOverAPoolMatchesReference(transposeA: Transpose, transposeB: Transpose) {
        var rng = SeededGenerator(seed: 9)
        let pool = ThreadPool(threadCount: 2)
        defer { pool.shutdown() }
        for (m, n, k) in [(1, 1000, 1200), (5, 900, 300), (300, 40, 100), (97, 97, 130), (40, 1000, 64)] {
            let lda = (transposeA == .none ? k : m) + 3
            let ldb = (transposeB == .none ? n : k) + 3
            let ldc = n + 3
            let a = rng.floats((transposeA == .none ? m : k) * lda)
            let b = rng.floats((transposeB == .none ? k : n) * ldb)
            var c = rng.floats(m * ldc)
            let expected = Reference.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                                          a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: c, ldc: ldc)
            BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.5,
                      a: a.buffer, lda: lda, b: b.buffer, ldb: ldb, beta: 1, c: c.mutableBuffer, ldc: ldc, pool: pool)
            #expect(maxError(c, expected) <= 1e-5 * Float(k), "m=\(m) n=\(n) k=\(k)")
        }
    }

    @Test func batchedGemm() {
        var rng = SeededGenerator(seed: 8)
        let (m, n, k, batches) = (5, 6, 7, 4)
        let a = rng.floats(batches * m * k), b = rng.floats(batches * k * n)
        var c = [Float](repeating: 0, count: batches * m * n)
        BLAS.batchedGemm(m: m, n: n, k: k, a: a.buffer, lda: k, strideA: m * k, b: b.buffer, ldb: n, strideB: k * n,
                         c: c.mutableBuffer, ldc: n, strideC: m * n, batchCount: batches)
        for batch in 0..<batches {
            let expected = Reference.gemm(
                transposeA: .none, transposeB: .none, m: m, n: n, k: k, alpha: 1,
                a: Array(a[(batch * m * k)..<((batch + 1) * m * k)]), lda: k,
                b: Array(b[(batch * k * n)..<((batch + 1) * k * n)]), ldb: n, beta: 0,
                c: [Float](repeating: 0, count: m * n), ldc: n)
            #expect(maxError(Array(c[(batch * m * n)..<((batch + 1) * m * n)]), expected) <= 1e-5)
        }
    }

    @Test(arguments: [Transpose.none, .transposed]) func gemv(transpose: Transpose) {
        var rng = SeededGenerator(seed: 9)
        for (rows, columns) in [(1, 1), (17, 33), (64, 5), (3, 0)] {
            let lda = columns + 2
            let a = rng.floats(max(1, rows * lda))
            let x = rng.floats(transpose == .none ? columns : rows)
            var y = rng.floats(transpose == .none ? rows : columns)
            // gemv is gemm with a single-column B.
            let expected = Reference.gemm(
                transposeA: transpose, transposeB: .none, m: y.count, n: 1, k: x.count, alpha: 1.5,
                a: a, lda: lda, b: x, ldb: 1, beta: -1, c: y, ldc: 1)
            BLAS.gemv(transpose: transpose, rows: rows, columns: columns, alpha: 1.5, a: a.buffer, lda: lda,
                      x: x.buffer, beta: -1, y: y.mutableBuffer)
            #expect(maxError(y, expected) <= 1e-5 * Float(max(1, x.count)), "\(rows)×\(columns)")
        }
    }

    @Test func coreNameIsReported() {
        #expect(!BLAS.coreName.isEmpty && BLAS.coreName != "unknown")
    }
}

@Suite struct ThreadPoolTests {
    @Test(arguments: [1, 2, 3, 8]) func everyIndexRunsExactlyOnce(threads: Int) {
        let pool = ThreadPool(threadCount: threads, spinMicroseconds: 50)
        defer { pool.shutdown() }
        for count in [0, 1, 2, 7, 64, 1000] {
            for grain in [1, 3, 100] {
                var hits = [Int](repeating: 0, count: count)
                hits.withUnsafeMutableBufferPointer { hits in
                    // Ranges are disjoint, so unsynchronized writes to distinct indices are safe.
                    nonisolated(unsafe) let h = hits
                    pool.parallelFor(count, grain: grain) { range in
                        for i in range { h[i] += 1 }
                    }
                }
                #expect(hits.allSatisfy { $0 == 1 }, "count \(count) grain \(grain)")
            }
        }
    }

    @Test func manySmallDispatchesAndNesting() {
        let pool = ThreadPool(threadCount: 2, spinMicroseconds: 20)
        defer { pool.shutdown() }
        var total = [Int](repeating: 0, count: 16)
        total.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let t = buffer
            for _ in 0..<20_000 {
                pool.parallelFor(16) { range in
                    for i in range {
                        // A nested call runs serially on the calling worker.
                        pool.parallelFor(2) { inner in t[i] += inner.count }
                    }
                }
            }
        }
        #expect(total.allSatisfy { $0 == 40_000 })
    }
}
