import CKilnBLAS

/// Whether a matrix operand is used as stored or transposed.
public enum Transpose: Sendable {
    case none
    case transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// Dense f32 matrix products through OpenBLAS, row-major, with every size checked against the
/// buffers before OpenBLAS sees them.
public enum BLAS {
    /// OpenBLAS runs single-threaded inside Kiln: a GEMM given a pool splits its rows over Kiln's
    /// own threads instead. Two thread systems on the same cores fight (OpenBLAS's idle workers
    /// spin in sched_yield while Kiln's run LayerNorm or attention), which measured ~1.8× slower
    /// for MiniLM embedding on two cores.
    static let ownsThreading: Void = { openblas_set_num_threads(1) }()

    /// C = alpha · op(A) · op(B) + beta · C, with op(A) m×k, op(B) k×n, C m×n, all row-major.
    /// `lda`, `ldb`, `ldc` are the row strides in elements as stored (A is k×m when transposed).
    /// With a `pool`, blocks of C's rows run on its threads (call from outside the pool's tasks).
    public static func gemm(
        transposeA: Transpose = .none, transposeB: Transpose = .none,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int,
        b: UnsafeBufferPointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutableBufferPointer<Float>, ldc: Int,
        pool: ThreadPool? = nil
    ) {
        validateGemm(transposeA, transposeB, m, n, k, a.count, lda, b.count, ldb, c.count, ldc)
        guard m > 0 && n > 0 else { return }
        if k == 0 {  // OpenBLAS would still need valid pointers; the product is empty.
            for row in 0..<m { scaleUnchecked(c.baseAddress! + row * ldc, beta, n) }
            return
        }
        _ = ownsThreading
        let pa = a.baseAddress!, pb = b.baseAddress!, pc = c.baseAddress!
        func rows(_ range: Range<Int>) {
            // op(A)'s rows are stored rows, or stored columns when A is transposed.
            let aStart = transposeA == .none ? range.lowerBound * lda : range.lowerBound
            cblas_sgemm(
                CblasRowMajor, transposeA.cblas, transposeB.cblas, Int32(range.count), Int32(n), Int32(k), alpha,
                pa + aStart, Int32(lda), pb, Int32(ldb), beta, pc + range.lowerBound * ldc, Int32(ldc))
        }
        // Below ~1 MFLOP per thread the dispatch costs more than it saves.
        guard let pool, pool.threadCount > 1, m * n * k >= pool.threadCount * 500_000 else {
            rows(0..<m)
            return
        }
        let blocks = pool.threadCount
        // Each thread packs its own copy of the operand it shares: all of B when C's rows are split,
        // all of A when its columns are. Split the longer side so the shared operand is the smaller.
        if m >= 2 * 16 && m >= n {
            // Blocks of C's rows in multiples of 16 (OpenBLAS's micro-kernel height), one per thread.
            let perBlock = ((m + blocks - 1) / blocks + 15) / 16 * 16
            pool.parallelFor((m + perBlock - 1) / perBlock) { range in
                for block in range { rows((block * perBlock)..<min(m, (block + 1) * perBlock)) }
            }
        } else {
            // Split C's columns, so each thread reads only its part of B (for a single query the
            // product is bound by reading B).
            let perBlock = ((n + blocks - 1) / blocks + 15) / 16 * 16
            pool.parallelFor((n + perBlock - 1) / perBlock) { range in
                for block in range {
                    let first = block * perBlock, width = min(n, first + perBlock) - first
                    let bStart = transposeB == .none ? first : first * ldb
                    cblas_sgemm(
                        CblasRowMajor, transposeA.cblas, transposeB.cblas, Int32(m), Int32(width), Int32(k), alpha,
                        pa, Int32(lda), pb + bStart, Int32(ldb), beta, pc + first, Int32(ldc))
                }
            }
        }
    }

    /// `batchCount` independent GEMMs whose operands sit `strideA`, `strideB`, `strideC` elements apart.
    public static func batchedGemm(
        transposeA: Transpose = .none, transposeB: Transpose = .none,
        m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int, strideA: Int,
        b: UnsafeBufferPointer<Float>, ldb: Int, strideB: Int,
        beta: Float = 0,
        c: UnsafeMutableBufferPointer<Float>, ldc: Int, strideC: Int,
        batchCount: Int
    ) {
        kernelRequire(batchCount >= 0, "batchCount must be non-negative, got \(batchCount)")
        kernelRequire(strideA >= 0 && strideB >= 0 && strideC >= 0, "strides must be non-negative")
        guard batchCount > 0 else { return }
        let last = batchCount - 1
        // Each batch's extent is checked by gemm against the remaining buffer.
        requireCount(a.count, atLeast: last * strideA, "a")
        requireCount(b.count, atLeast: last * strideB, "b")
        requireCount(c.count, atLeast: last * strideC, "c")
        kernelRequire(strideC > 0 || batchCount == 1 || m == 0 || n == 0, "strideC 0 would overwrite one C")
        for batch in 0..<batchCount {
            gemm(
                transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                a: UnsafeBufferPointer(rebasing: a[(batch * strideA)...]), lda: lda,
                b: UnsafeBufferPointer(rebasing: b[(batch * strideB)...]), ldb: ldb, beta: beta,
                c: UnsafeMutableBufferPointer(rebasing: c[(batch * strideC)...]), ldc: ldc)
        }
    }

    /// y = alpha · op(A) · x + beta · y with A rows×columns row-major (row stride lda).
    /// y has `rows` entries (no transpose) or `columns` (transposed).
    public static func gemv(
        transpose: Transpose = .none, rows: Int, columns: Int, alpha: Float = 1,
        a: UnsafeBufferPointer<Float>, lda: Int, x: UnsafeBufferPointer<Float>,
        beta: Float = 0, y: UnsafeMutableBufferPointer<Float>
    ) {
        kernelRequire(rows >= 0 && columns >= 0, "rows and columns must be non-negative, got \(rows)×\(columns)")
        kernelRequire(lda >= max(1, columns), "lda \(lda) is smaller than columns \(columns)")
        let (xCount, yCount) = transpose == .none ? (columns, rows) : (rows, columns)
        requireCount(x.count, atLeast: xCount, "x")
        requireCount(y.count, atLeast: yCount, "y")
        if rows > 0 && columns > 0 { requireCount(a.count, atLeast: (rows - 1) * lda + columns, "a") }
        guard yCount > 0 else { return }
        if xCount == 0 {
            scaleUnchecked(y.baseAddress!, beta, yCount)
            return
        }
        _ = ownsThreading
        cblas_sgemv(
            CblasRowMajor, transpose.cblas, Int32(rows), Int32(columns), alpha, a.baseAddress, Int32(lda),
            x.baseAddress, 1, beta, y.baseAddress, 1)
    }

    /// The OpenBLAS kernel family chosen for this CPU (e.g. "Cooperlake", "Haswell").
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// Sets OpenBLAS's own thread count (its pool is separate from Kiln's `ThreadPool`).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    private static func validateGemm(
        _ ta: Transpose, _ tb: Transpose, _ m: Int, _ n: Int, _ k: Int,
        _ aCount: Int, _ lda: Int, _ bCount: Int, _ ldb: Int, _ cCount: Int, _ ldc: Int,
        kernel: StaticString = "gemm"
    ) {
        kernelRequire(m >= 0 && n >= 0 && k >= 0, "sizes must be non-negative, got m=\(m) n=\(n) k=\(k)", kernel: kernel)
        kernelRequire(max(m, n, k) <= Int(Int32.max), "sizes exceed OpenBLAS's 32-bit range", kernel: kernel)
        // Stored shapes: A is m×k (or k×m transposed), B is k×n (or n×k), C is m×n.
        let (aRows, aColumns) = ta == .none ? (m, k) : (k, m)
        let (bRows, bColumns) = tb == .none ? (k, n) : (n, k)
        kernelRequire(lda >= max(1, aColumns), "lda \(lda) is smaller than A's \(aColumns) stored columns", kernel: kernel)
        kernelRequire(ldb >= max(1, bColumns), "ldb \(ldb) is smaller than B's \(bColumns) stored columns", kernel: kernel)
        kernelRequire(ldc >= max(1, n), "ldc \(ldc) is smaller than C's \(n) columns", kernel: kernel)
        if aRows > 0 && aColumns > 0 && m > 0 && n > 0 {
            requireCount(aCount, atLeast: (aRows - 1) * lda + aColumns, "a", kernel: kernel)
        }
        if bRows > 0 && bColumns > 0 && m > 0 && n > 0 {
            requireCount(bCount, atLeast: (bRows - 1) * ldb + bColumns, "b", kernel: kernel)
        }
        if m > 0 && n > 0 { requireCount(cCount, atLeast: (m - 1) * ldc + n, "c", kernel: kernel) }
    }
}
