/// Scales each `dimension`-long row of `rows` to unit length in place (Σx² summed in order, then
/// divided by its square root) and returns the first row that is all zeros, or nil; rows from
/// that one on are left as they were. Plain indexing: a slice of `rows` alive across the writes
/// would copy the whole array once per row.
func normalizeRows(_ rows: inout [Float], dimension: Int) -> Int? {
    for row in 0..<(rows.count / dimension) {
        let span = (row * dimension)..<((row + 1) * dimension)
        var squares: Float = 0
        for i in span { squares = squares + rows[i] * rows[i] }
        guard squares > 0 else { return row }
        let norm = squares.squareRoot()
        for i in span { rows[i] /= norm }
    }
    return nil
}
