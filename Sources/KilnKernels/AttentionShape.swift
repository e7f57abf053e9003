/// Sizes and memory layout of one scaled-dot-product attention call.
///
/// Per batch item, per position, heads are packed: Q[position][head][headDimension],
/// K[position][kvHead][headDimension], V[position][kvHead][valueDimension],
/// O[position][head][valueDimension]. Position and batch strides (in floats) default to packed
/// layouts and can be widened, e.g. for a KV cache with room for more positions than are in use.
/// Query head h reads KV head h / (headCount / kvHeadCount) (grouped-query attention).
public struct AttentionShape: Sendable, Equatable {
    public var batchCount: Int
    public var queryCount: Int
    public var keyCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDimension: Int
    public var valueDimension: Int

    public var queryPositionStride: Int
    public var keyPositionStride: Int
    public var valuePositionStride: Int
    public var outputPositionStride: Int
    public var queryBatchStride: Int
    public var keyBatchStride: Int
    public var valueBatchStride: Int
    public var outputBatchStride: Int

    public init(
        batchCount: Int = 1, queryCount: Int, keyCount: Int, headCount: Int, kvHeadCount: Int? = nil,
        headDimension: Int, valueDimension: Int? = nil
    ) {
        self.batchCount = batchCount
        self.queryCount = queryCount
        self.keyCount = keyCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount ?? headCount
        self.headDimension = headDimension
        self.valueDimension = valueDimension ?? headDimension
        queryPositionStride = headCount * headDimension
        keyPositionStride = self.kvHeadCount * headDimension
        valuePositionStride = self.kvHeadCount * self.valueDimension
        outputPositionStride = headCount * self.valueDimension
        queryBatchStride = queryCount * queryPositionStride
        keyBatchStride = keyCount * keyPositionStride
        valueBatchStride = keyCount * valuePositionStride
        outputBatchStride = queryCount * outputPositionStride
    }

    /// Query heads per KV head.
    public var groupSize: Int { headCount / kvHeadCount }

    /// Floats each buffer must hold, from its base to its last element.
    public var queryExtent: Int { extent(queryBatchStride, queryCount, queryPositionStride, headCount * headDimension) }
    public var keyExtent: Int { extent(keyBatchStride, keyCount, keyPositionStride, kvHeadCount * headDimension) }
    public var valueExtent: Int { extent(valueBatchStride, keyCount, valuePositionStride, kvHeadCount * valueDimension) }
    public var outputExtent: Int { extent(outputBatchStride, queryCount, outputPositionStride, headCount * valueDimension) }
    /// Entries of the log-sum-exp side output: [batch][head][query].
    public var rowCount: Int { batchCount * headCount * queryCount }

    private func extent(_ batchStride: Int, _ positions: Int, _ positionStride: Int, _ width: Int) -> Int {
        guard batchCount > 0 && positions > 0 else { return 0 }
        return (batchCount - 1) * batchStride + (positions - 1) * positionStride + width
    }

    func validate(kernel: StaticString) {
        kernelRequire(batchCount >= 0 && queryCount >= 0 && keyCount >= 0,
                      "batch, query and key counts must be non-negative", kernel: kernel)
        kernelRequire(headCount > 0 && kvHeadCount > 0, "head counts must be positive, got \(headCount)/\(kvHeadCount)", kernel: kernel)
        kernelRequire(headCount % kvHeadCount == 0,
                      "headCount \(headCount) is not a multiple of kvHeadCount \(kvHeadCount)", kernel: kernel)
        kernelRequire(headDimension > 0 && valueDimension > 0,
                      "head dimensions must be positive, got \(headDimension)/\(valueDimension)", kernel: kernel)
        kernelRequire(queryPositionStride >= headCount * headDimension, "queryPositionStride too small", kernel: kernel)
        kernelRequire(keyPositionStride >= kvHeadCount * headDimension, "keyPositionStride too small", kernel: kernel)
        kernelRequire(valuePositionStride >= kvHeadCount * valueDimension, "valuePositionStride too small", kernel: kernel)
        kernelRequire(outputPositionStride >= headCount * valueDimension, "outputPositionStride too small", kernel: kernel)
        kernelRequire(queryBatchStride >= 0 && keyBatchStride >= 0 && valueBatchStride >= 0 && outputBatchStride >= 0,
                      "batch strides must be non-negative", kernel: kernel)
    }
}

/// Which keys each query may attend to, besides an optional key-padding mask.
public enum AttentionMasking: Sendable, Equatable {
    /// Every query sees every key (BERT, the image models' self-attention).
    case bidirectional
    /// Query i sits at absolute position queryOffset + i and sees keys 0...queryOffset + i
    /// (prefill: offset = tokens already cached; decode: offset = keyCount − 1).
    case causal(queryOffset: Int)
    /// Causal, and query i sees only the `window` latest keys, p − window + 1...p with
    /// p = queryOffset + i: the sliding-window layers of Gemma, Phi-3 and Mistral.
    case slidingWindow(queryOffset: Int, window: Int)

    /// One past the last key query `query` sees.
    @inline(__always)
    func keyLimit(query: Int, keyCount: Int) -> Int {
        switch self {
        case .bidirectional: return keyCount
        case .causal(let offset), .slidingWindow(let offset, _): return max(0, min(keyCount, offset + query + 1))
        }
    }

    /// The first key query `query` sees.
    @inline(__always)
    func keyStart(query: Int) -> Int {
        switch self {
        case .bidirectional, .causal: return 0
        case .slidingWindow(let offset, let window): return max(0, offset + query - window + 1)
        }
    }

    /// The keys query `query` sees.
    public func keyRange(query: Int, keyCount: Int) -> Range<Int> {
        let limit = keyLimit(query: query, keyCount: keyCount)
        return min(keyStart(query: query), limit)..<limit
    }

    var isWindowed: Bool { if case .slidingWindow = self { true } else { false } }
}
