extension VectorOps {
    /// For each of `batch` row-major rows × columns matrices: out[b][j][i] = scale·source[b][i][j],
    /// plus adding[b][j][i] when given (`adding` is laid out like `out`). Works in 16 × 16 tiles so
    /// both sides' lines stay in L1; one matrix per task on the pool.
    public static func transposeBatched(
        _ source: UnsafeBufferPointer<Float>, batch: Int, rows: Int, columns: Int, scale: Float = 1,
        adding: UnsafeBufferPointer<Float>? = nil, into out: UnsafeMutableBufferPointer<Float>, pool: ThreadPool? = nil
    ) {
        let count = batch * rows * columns
        requireCount(source.count, atLeast: count, "source")
        requireCount(out.count, atLeast: count, "out")
        if let adding { requireCount(adding.count, atLeast: count, "adding") }
        guard count > 0 else { return }
        let s = source.baseAddress!, o = out.baseAddress!, add = adding?.baseAddress
        func matrices(_ range: Range<Int>) {
            for b in range {
                let from = s + b * rows * columns, to = o + b * rows * columns, base = add.map { $0 + b * rows * columns }
                for i0 in stride(from: 0, to: rows, by: 16) {
                    for j0 in stride(from: 0, to: columns, by: 16) {
                        for i in i0..<min(rows, i0 + 16) {
                            for j in j0..<min(columns, j0 + 16) {
                                let t = j * rows + i
                                to[t] = scale * from[i * columns + j] + (base?[t] ?? 0)
                            }
                        }
                    }
                }
            }
        }
        if let pool { pool.parallelFor(batch, matrices) } else { matrices(0..<batch) }
    }
}
