import CKilnKernels

/// GGUF block-quantized weight formats with Kiln kernels (ggml type numbers as raw values). Every
/// property comes from the one type table in the C kernels (`kiln_quant_type_info`): a new type is
/// a row there plus its kernels.
public struct QuantizationType: RawRepresentable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    public let rawValue: Int32
    // The table row (static C data) of this type.
    var info: KilnQuantTypeInfo { kiln_quant_type_info(rawValue)!.pointee }

    /// The type with ggml number `rawValue`, when it is a block type Kiln can multiply by.
    public init?(rawValue: Int32) {
        guard let info = kiln_quant_type_info(rawValue)?.pointee, info.hasKernels != 0,
              info.activation != Int32(KILN_ACTIVATION_NONE.rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(_ type: KilnQuantType) { self.init(rawValue: Int32(type.rawValue))! }

    public static let f16 = Self(KILN_QTYPE_F16)
    public static let bf16 = Self(KILN_QTYPE_BF16)
    public static let q4_0 = Self(KILN_QTYPE_Q4_0)
    public static let q4_1 = Self(KILN_QTYPE_Q4_1)
    public static let q5_0 = Self(KILN_QTYPE_Q5_0)
    public static let q5_1 = Self(KILN_QTYPE_Q5_1)
    public static let q8_0 = Self(KILN_QTYPE_Q8_0)
    public static let q2_K = Self(KILN_QTYPE_Q2_K)
    public static let q3_K = Self(KILN_QTYPE_Q3_K)
    public static let q4_K = Self(KILN_QTYPE_Q4_K)
    public static let q5_K = Self(KILN_QTYPE_Q5_K)
    public static let q6_K = Self(KILN_QTYPE_Q6_K)
    public static let iq4_nl = Self(KILN_QTYPE_IQ4_NL)
    public static let iq4_xs = Self(KILN_QTYPE_IQ4_XS)

    /// Every type of the table that has block kernels, in ggml's numbering order.
    public static var allCases: [QuantizationType] { (0..<64).compactMap { QuantizationType(rawValue: $0) } }

    /// ggml's name of the type ("Q4_K").
    public var description: String { String(cString: info.name) }

    /// Weights per block: 32 for the legacy types, 256 for the K-quants and IQ4_XS.
    public var blockElements: Int { Int(info.blockElements) }

    /// Bytes per block.
    public var blockBytes: Int { Int(info.blockBytes) }

    /// Whether the products read 256-value q8_K activations (else 32-value q8_0 blocks).
    public var usesSuperBlockActivations: Bool { info.activation == Int32(KILN_ACTIVATION_Q8_K.rawValue) }
    /// Whether the products read the activations rounded to f16 (F16 weights) or bf16 (BF16).
    public var usesHalfActivations: Bool { info.activation == Int32(KILN_ACTIVATION_F16.rawValue) }
    public var usesBFloatActivations: Bool { info.activation == Int32(KILN_ACTIVATION_BF16.rawValue) }

    /// The largest batch of tokens in which each token's products have the bits it gets alone
    /// (`Int.max` for any): a decoding step of that many sequences decodes each exactly as alone.
    public var exactBatchTokens: Int { info.exactBatchTokens == Int32.max ? Int.max : Int(info.exactBatchTokens) }
    /// Whether a token's products have the same bits in a batch of any size (a prompt split
    /// anywhere then gives the bits it gives whole).
    public var sameBitsInAnyBatch: Bool { exactBatchTokens == Int.max }

    /// Bytes of one row of `columns` weights (columns must be a multiple of `blockElements`).
    public func rowBytes(columns: Int) -> Int { columns / blockElements * blockBytes }

    public static func == (a: Self, b: Self) -> Bool { a.rawValue == b.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Weights per block of the 32-value activation blocks every type's activations are built from.
    public static let blockSize = 32
}

/// Activations quantized to 8-bit blocks as llama.cpp does before a quantized product
/// (d = max|x|/127 rounded to f16, q = round(x/d)), in buffers allocated once and reused.
public final class QuantizedActivations: @unchecked Sendable {
    public let columns: Int
    public let capacityRows: Int
    public var blockCount: Int { columns / QuantizationType.blockSize }
    /// Rows quantized by the last `quantize` call.
    public private(set) var rowCount = 0

    let values: UnsafeMutablePointer<Int8>
    let scales: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Float>
    let integerSums: UnsafeMutablePointer<Int32>
    // q8_K super-blocks for the K-quant products, when the columns fill whole super-blocks.
    let superValues: UnsafeMutablePointer<Int8>?
    let superScales: UnsafeMutablePointer<Float>?
    let superSums: UnsafeMutablePointer<Int16>?
    // The activations rounded to f16 / bf16 for F16 / BF16 weights.
    let halfValues: UnsafeMutablePointer<UInt16>?
    let bfloatValues: UnsafeMutablePointer<UInt16>?

    /// Whether K-quant products can read these activations (columns a multiple of 256).
    public var hasSuperBlocks: Bool { superValues != nil }

    /// Whether the f16 / bf16 rows that `type`'s products read (if any) were built.
    public func hasRows(for type: QuantizationType) -> Bool {
        (!type.usesHalfActivations || halfValues != nil) && (!type.usesBFloatActivations || bfloatValues != nil)
    }

    /// Room for `rows` rows of `columns` values; columns must be a positive multiple of 32.
    /// `superBlocks` also builds q8_K super-blocks (when the columns fill them) for K-quant
    /// products; a caller whose weights have none passes false and skips their quantization.
    /// `types` (when given) are the weight types that will read these activations: q8_K, f16 and
    /// bf16 rows are built only for the types among them that need them.
    public init(columns: Int, rows: Int = 1, superBlocks: Bool = true, types: [QuantizationType]? = nil) {
        let superBlocks = types.map { $0.contains { $0.usesSuperBlockActivations } } ?? superBlocks
        kernelRequire(columns > 0 && columns % QuantizationType.blockSize == 0,
                      "columns must be a positive multiple of 32, got \(columns)")
        requirePositive(rows, "rows")
        self.columns = columns
        capacityRows = rows
        let blocks = rows * columns / QuantizationType.blockSize
        // 64-byte alignment lets the VNNI kernel's 512-bit loads stay within cache lines.
        values = UnsafeMutableRawPointer.allocate(byteCount: rows * columns, alignment: 64)
            .bindMemory(to: Int8.self, capacity: rows * columns)
        scales = .allocate(capacity: blocks)
        sums = .allocate(capacity: blocks)
        integerSums = .allocate(capacity: blocks)
        if superBlocks && columns % 256 == 0 {
            superValues = UnsafeMutableRawPointer.allocate(byteCount: rows * columns, alignment: 64)
                .bindMemory(to: Int8.self, capacity: rows * columns)
            superScales = .allocate(capacity: blocks / 8)
            superSums = .allocate(capacity: blocks * 2)
        } else {
            superValues = nil
            superScales = nil
            superSums = nil
        }
        halfValues = (types ?? QuantizationType.allCases).contains { $0.usesHalfActivations } ? .allocate(capacity: rows * columns) : nil
        bfloatValues = (types ?? QuantizationType.allCases).contains { $0.usesBFloatActivations } ? .allocate(capacity: rows * columns) : nil
    }

    deinit {
        values.deallocate()
        scales.deallocate()
        sums.deallocate()
        integerSums.deallocate()
        superValues?.deallocate()
        superScales?.deallocate()
        superSums?.deallocate()
        halfValues?.deallocate()
        bfloatValues?.deallocate()
    }

    /// Quantizes `rows` rows of `columns` floats (row-major, contiguous).
    public func quantize(_ x: UnsafeBufferPointer<Float>, rows: Int = 1) {
        kernelRequire(rows >= 0 && rows <= capacityRows, "rows \(rows) exceeds the capacity \(capacityRows)")
        requireCount(x.count, atLeast: rows * columns, "x")
        for row in 0..<rows {
            kiln_quantize_activations(x.baseAddress! + row * columns, Int64(blockCount), raw, Int64(row))
        }
        rowCount = rows
    }

    var raw: KilnQ8Activations {
        KilnQ8Activations(values: values, scales: scales, sums: sums, integerSums: integerSums,
                          kValues: superValues, kScales: superScales, kSums: superSums,
                          halfValues: halfValues, bfloatValues: bfloatValues)
    }

    /// Row `row`'s q8_K super-block `index` (values, d and the 16 sums), for inspection.
    public func superBlock(row: Int, index: Int) -> (values: [Int8], scale: Float, sums: [Int16]) {
        let count = columns / 256
        kernelRequire(hasSuperBlocks && row >= 0 && row < rowCount && index >= 0 && index < count,
                      "super-block (\(row), \(index)) out of range")
        let b = row * count + index
        return (Array(UnsafeBufferPointer(start: superValues! + b * 256, count: 256)), superScales![b],
                Array(UnsafeBufferPointer(start: superSums! + b * 16, count: 16)))
    }

    /// Row `row`'s int8 values, scales (f16-rounded d) and llama.cpp's q8_1 sums, for inspection.
    public func block(row: Int, index: Int) -> (values: [Int8], scale: Float, sum: Float, integerSum: Int32) {
        kernelRequire(row >= 0 && row < rowCount && index >= 0 && index < blockCount, "block (\(row), \(index)) out of range")
        let b = row * blockCount + index
        let v = Array(UnsafeBufferPointer(start: values + b * 32, count: 32))
        return (v, scales[b], sums[b], integerSums[b])
    }
}

/// One quantized weight matrix and where its product goes, for `QuantizedOps.matmul(group:…)`.
/// Build these once (weights and output buffers live as long as the model) and reuse them.
public struct QuantizedMatrix: @unchecked Sendable {
    public var type: QuantizationType
    /// rows × columns weights in `type` blocks, row-major.
    public var weights: UnsafeRawBufferPointer
    public var rows: Int
    /// [tokens][outputStride] results; row r of token t at t·outputStride + r.
    public var output: UnsafeMutableBufferPointer<Float>
    public var outputStride: Int

    public init(type: QuantizationType, weights: UnsafeRawBufferPointer, rows: Int,
                output: UnsafeMutableBufferPointer<Float>, outputStride: Int? = nil) {
        self.type = type
        self.weights = weights
        self.rows = rows
        self.output = output
        self.outputStride = outputStride ?? rows
    }
}

/// Products of quantized weights with quantized activations, computed on the blocks directly.
public enum QuantizedOps {
    /// Up to this many tokens (a decoding step of a few sequences) a product is bound by reading
    /// the weights, so each thread streams one contiguous range of rows; more are compute-bound
    /// and split finer.
    static let decodeLikeTokens = 8

    /// Several matrices that read the same activations (a layer's Q, K and V projections; the
    /// feed-forward gate and up) in one parallel dispatch: their rows are split across the threads
    /// as if stacked, so there is one synchronization instead of one per matrix.
    public static func matmul(group: [QuantizedMatrix], activations: QuantizedActivations, pool: ThreadPool = .shared) {
        let tokens = activations.rowCount
        var totalRows = 0
        for m in group {
            validate(m.type, m.weights.count, m.rows, activations, m.output.count, m.outputStride)
            totalRows += m.rows
        }
        guard totalRows > 0 && tokens > 0 else { return }
        let a = activations.raw, blocks = Int64(activations.blockCount), columns = activations.columns
        let grain = tokens <= Self.decodeLikeTokens
            ? (totalRows + pool.threadCount - 1) / pool.threadCount
            : max(1, 16_384 / max(1, columns * tokens))
        pool.parallelFor(totalRows, grain: grain) { range in
            var first = 0  // global index of matrix m's row 0
            for m in group {
                let lower = max(range.lowerBound, first), upper = min(range.upperBound, first + m.rows)
                if lower < upper {
                    kiln_quant_matmul(m.type.rawValue, m.weights.baseAddress!, m.type.rowBytes(columns: columns),
                                      Int64(lower - first), Int64(upper - first), Int64(m.rows), blocks, a, Int64(tokens),
                                      m.output.baseAddress!, Int64(m.outputStride))
                }
                first += m.rows
            }
        }
    }

    static func validate(
        _ type: QuantizationType, _ weightBytes: Int, _ rows: Int, _ activations: QuantizedActivations,
        _ outputCount: Int, _ outputStride: Int, kernel: StaticString = #function
    ) {
        let tokens = activations.rowCount
        kernelRequire(rows >= 0, "rows must be non-negative, got \(rows)", kernel: kernel)
        kernelRequire(outputStride >= rows, "outputStride \(outputStride) is smaller than rows \(rows)", kernel: kernel)
        kernelRequire(activations.columns % type.blockElements == 0 && (!type.usesSuperBlockActivations || activations.hasSuperBlocks),
                      "\(type) rows need a multiple of \(type.blockElements) columns, got \(activations.columns)", kernel: kernel)
        kernelRequire(activations.hasRows(for: type),
                      "\(type) products read \(type) activations, which these activations were not built with", kernel: kernel)
        requireCount(weightBytes, atLeast: rows * type.rowBytes(columns: activations.columns), "weights (bytes)", kernel: kernel)
        if tokens > 0 && rows > 0 { requireCount(outputCount, atLeast: (tokens - 1) * outputStride + rows, "output", kernel: kernel) }
    }

    /// out[t·outputStride + r] = Σ_c W[r, c] · x[t, c] for rows r < rows and the activation rows t
    /// last quantized into `activations`. W is `rows` × `activations.columns` in `type` blocks.
    /// Rows are split across `pool`; each weight block is unpacked once per four activation rows.
    public static func matmul(
        _ type: QuantizationType, weights: UnsafeRawBufferPointer, rows: Int,
        activations: QuantizedActivations, output: UnsafeMutableBufferPointer<Float>, outputStride: Int? = nil,
        pool: ThreadPool = .shared
    ) {
        let tokens = activations.rowCount
        let stride = outputStride ?? rows
        let rowBytes = type.rowBytes(columns: activations.columns)
        validate(type, weights.count, rows, activations, output.count, stride, kernel: "matmul")
        guard rows > 0 && tokens > 0 else { return }
        let w = weights.baseAddress!, out = output.baseAddress!, a = activations.raw
        let blocks = Int64(activations.blockCount)
        // Decode streams each weight row once: one contiguous range per thread keeps each thread's
        // stream sequential for the prefetcher. Prefill is compute-bound: smaller tasks balance better.
        let grain = tokens <= Self.decodeLikeTokens
            ? (rows + pool.threadCount - 1) / pool.threadCount
            : max(1, 16_384 / max(1, activations.columns * tokens))
        pool.parallelFor(rows, grain: grain) { range in
            kiln_quant_matmul(type.rawValue, w, rowBytes, Int64(range.lowerBound), Int64(range.upperBound), Int64(rows),
                              blocks, a, Int64(tokens), out, Int64(stride))
        }
    }

    /// Σ_c W[row, c] · x[activationRow, c] for one weight row (`rowBytes` of `type` blocks).
    public static func dot(
        _ type: QuantizationType, weightRow: UnsafeRawBufferPointer, activations: QuantizedActivations,
        activationRow: Int = 0
    ) -> Float {
        kernelRequire(activations.columns % type.blockElements == 0 && (!type.usesSuperBlockActivations || activations.hasSuperBlocks),
                      "\(type) rows need a multiple of \(type.blockElements) columns, got \(activations.columns)")
        kernelRequire(activations.hasRows(for: type),
                      "\(type) products read \(type) activations, which these activations were not built with")
        requireCount(weightRow.count, atLeast: type.rowBytes(columns: activations.columns), "weightRow (bytes)")
        kernelRequire(activationRow >= 0 && activationRow < activations.rowCount,
                      "activationRow \(activationRow) is not among the \(activations.rowCount) quantized rows")
        return kiln_quant_dot(type.rawValue, weightRow.baseAddress!, activations.raw, Int64(activationRow),
                              Int64(activations.blockCount))
    }

    /// Expands `count` weights (whole blocks) of `type` blocks to f32.
    public static func dequantize(
        _ type: QuantizationType, blocks: UnsafeRawBufferPointer, count: Int, into out: UnsafeMutableBufferPointer<Float>
    ) {
        kernelRequire(count >= 0 && count % type.blockElements == 0,
                      "count must be a multiple of \(type.blockElements) for \(type), got \(count)")
        requireCount(blocks.count, atLeast: type.rowBytes(columns: count), "blocks (bytes)")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        kiln_dequantize(type.rawValue, blocks.baseAddress!, Int64(count), out.baseAddress!)
    }

    /// Whether weights stored as ggml type `ggmlType` can be expanded to f32 (`decode`).
    public static func canDecode(ggmlType: UInt32) -> Bool {
        guard ggmlType <= UInt32(Int32.max), let info = kiln_quant_type_info(Int32(ggmlType))?.pointee else { return false }
        return info.hasKernels != 0
    }

    /// Whether floats can be quantized into ggml type `ggmlType` (`encode`).
    public static func canEncode(ggmlType: UInt32) -> Bool {
        guard ggmlType <= UInt32(Int32.max), let info = kiln_quant_type_info(Int32(ggmlType))?.pointee else { return false }
        return info.hasQuantizer != 0
    }

    /// Expands `count` weights (whole blocks) stored as ggml type `ggmlType` (any type with
    /// `canDecode`, F32, F16 and BF16 included) to f32.
    public static func decode(
        ggmlType: UInt32, bytes: UnsafeRawBufferPointer, count: Int, into out: UnsafeMutableBufferPointer<Float>
    ) {
        kernelRequire(canDecode(ggmlType: ggmlType), "ggml type \(ggmlType) cannot be decoded")
        let info = kiln_quant_type_info(Int32(ggmlType))!.pointee
        let block = Int(info.blockElements)
        kernelRequire(count >= 0 && count % block == 0, "count must be a multiple of \(block), got \(count)")
        requireCount(bytes.count, atLeast: count / block * Int(info.blockBytes), "bytes")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        kiln_dequantize(Int32(ggmlType), bytes.baseAddress!, Int64(count), out.baseAddress!)
    }

    /// Index of the first NaN or infinity among `x`, or nil.
    public static func firstNonFinite(_ x: UnsafeBufferPointer<Float>) -> Int? {
        guard let base = x.baseAddress else { return nil }
        let index = kiln_first_nonfinite(base, Int64(x.count))
        return index < 0 ? nil : Int(index)
    }

    /// Quantizes `rows` rows of `columns` floats into ggml type `ggmlType` exactly as ggml's
    /// reference quantizers do (llama-quantize without an importance matrix), `pool` splitting the
    /// rows (each row is quantized on its own, so the bytes do not depend on the thread count).
    /// Returns the bytes written.
    @discardableResult
    public static func encode(
        ggmlType: UInt32, rows: Int, columns: Int, from x: UnsafeBufferPointer<Float>,
        into out: UnsafeMutableRawBufferPointer, pool: ThreadPool? = nil
    ) -> Int {
        kernelRequire(canEncode(ggmlType: ggmlType), "ggml type \(ggmlType) has no quantizer")
        let info = kiln_quant_type_info(Int32(ggmlType))!.pointee
        let block = Int(info.blockElements)
        kernelRequire(rows >= 0 && columns > 0 && columns % block == 0,
                      "columns must be a positive multiple of \(block), got \(columns)")
        let rowBytes = columns / block * Int(info.blockBytes)
        requireCount(x.count, atLeast: rows * columns, "x")
        requireCount(out.count, atLeast: rows * rowBytes, "out")
        guard rows > 0 else { return 0 }
        let source = x.baseAddress!, target = out.baseAddress!
        let body = { (range: Range<Int>) in
            _ = kiln_quantize_rows(Int32(ggmlType), source + range.lowerBound * columns,
                                   target + range.lowerBound * rowBytes, Int64(range.count), Int64(columns))
        }
        if let pool { pool.parallelFor(rows, grain: max(1, 16_384 / columns), body) } else { body(0..<rows) }
        return rows * rowBytes
    }

    /// IEEE half-precision bit patterns to f32.
    public static func convertF16(_ bits: UnsafeBufferPointer<UInt16>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        requireCount(bits.count, atLeast: count, "bits")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        kiln_f16_to_f32(bits.baseAddress!, Int64(count), out.baseAddress!)
    }

    /// bfloat16 bit patterns to f32.
    public static func convertBF16(_ bits: UnsafeBufferPointer<UInt16>, into out: UnsafeMutableBufferPointer<Float>, count: Int) {
        requireCount(bits.count, atLeast: count, "bits")
        requireCount(out.count, atLeast: count, "out")
        guard count > 0 else { return }
        kiln_bf16_to_f32(bits.baseAddress!, Int64(count), out.baseAddress!)
    }

    /// f32 to the nearest half-precision bit pattern (ties to even).
    public static func halfBits(_ value: Float) -> UInt16 { kiln_f32_to_f16(value) }

    /// Whether the integer dot products run on AVX-512 VNNI (else portable C).
    public static var usesVNNI: Bool { kiln_quant_uses_vnni() != 0 }
}
