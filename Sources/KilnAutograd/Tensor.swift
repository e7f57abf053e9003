import KilnKernels

/// A float32 array with a shape that can take part in reverse-mode differentiation.
///
/// A tensor records how it was made only when one of its inputs is trainable (`requiresGradient`)
/// and recording is on, so inference through the same operations builds no graph and keeps no
/// inputs alive. `backward()` on a scalar result walks the recorded graph once, in reverse
/// topological order, adding each rule's contribution into the inputs' `gradient`.
public final class Tensor {
    public let shape: [Int]
    public var data: [Float]
    /// d(loss)/d(self), same length as `data`; empty until a backward pass reaches this tensor.
    public var gradient: [Float] = []
    /// Whether gradients flow to this tensor (parameters, and every result computed from one). A
    /// leaf can be frozen for a while: backward rules then skip its gradient (a GAN's generator
    /// step needs gradients through the discriminator, not for its weights).
    public var requiresGradient: Bool {
        didSet { precondition(rule == nil || requiresGradient == oldValue, "only a leaf tensor can be frozen or unfrozen") }
    }
    let inputs: [Tensor]
    let rule: ((Tensor) -> Void)?

    /// A leaf: data you own, trainable or not.
    public init(shape: [Int], data: [Float], requiresGradient: Bool = false) {
        precondition(shape.reduce(1, *) == data.count, "tensor of shape \(shape) needs \(shape.reduce(1, *)) values, got \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGradient = requiresGradient
        inputs = []
        rule = nil
    }

    /// A result buffer the caller fills completely before anyone reads it (skips zeroing).
    static func uninitialized(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    public convenience init(zeros shape: [Int], requiresGradient: Bool = false) {
        self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)), requiresGradient: requiresGradient)
    }

    /// An operation's result. `rule` receives the result (whose `gradient` is then filled) and
    /// adds into its inputs' gradients; it is kept only when some input requires gradients.
    init(shape: [Int], data: [Float], inputs: [Tensor], rule: @escaping (Tensor) -> Void) {
        self.shape = shape
        self.data = data
        let records = GradientRecording.isOn && inputs.contains { $0.requiresGradient }
        requiresGradient = records
        self.inputs = records ? inputs : []
        self.rule = records ? rule : nil
    }

    public var count: Int { data.count }
    /// The leading dimension: images or rows in a batch.
    public var batchCount: Int { shape.first ?? 1 }

    /// The same values with no history: gradients stop here.
    public func detached() -> Tensor { Tensor(shape: shape, data: data) }

    /// The same values viewed with another shape of equal size.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot view \(shape) as \(newShape)")
        return Tensor(shape: newShape, data: data, inputs: [self]) { out in
            self.accumulateGradient(out.gradient)
        }
    }

    /// Adds `g` (same length as data) into `gradient`.
    public func accumulateGradient(_ g: [Float]) {
        if gradient.isEmpty {
            gradient = g
            return
        }
        gradient.withUnsafeMutableBufferPointer { dst in
            g.withUnsafeBufferPointer { src in
                let d = dst.baseAddress!, s = src.baseAddress!
                ThreadPool.shared.parallelFor(dst.count, grain: elementwiseGrain) { range in
                    for i in range { d[i] += s[i] }
                }
            }
        }
    }

    /// The gradient, handed over: a rule that scales it in place then works on the only copy
    /// (the graph walk drops a result's gradient after its rule anyway).
    func takeGradient() -> [Float] {
        let g = gradient
        gradient = []
        return g
    }

    /// Runs `body` on this tensor's gradient buffer, zero-filled first if nothing has reached it.
    public func withGradient<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if gradient.isEmpty { gradient = [Float](repeating: 0, count: count) }
        return try gradient.withUnsafeMutableBufferPointer { try body($0) }
    }

    public func zeroGradient() { gradient = [] }

    /// Backpropagates from this scalar (d self / d self = 1) into every tensor it was computed from.
    public func backward() {
        precondition(count == 1, "backward() starts from a scalar, this tensor has shape \(shape)")
        guard requiresGradient else { return }
        var order: [Tensor] = []
        var seen = Set<ObjectIdentifier>()
        // Iterative depth-first post-order, so deep graphs cannot overflow the stack.
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded {
                order.append(node)
                continue
            }
            guard seen.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for input in node.inputs where input.requiresGradient && !seen.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        accumulateGradient([1])
        for node in order.reversed() {
            guard let rule = node.rule, !node.gradient.isEmpty else { continue }
            rule(node)
            // Intermediate results give their gradient up once it has flowed on.
            node.gradient = []
        }
    }
}

/// Whether new results record their history (on by default). Sampling and evaluation turn it off
/// so even trainable parameters build no graph.
public enum GradientRecording {
    @TaskLocal static var enabled = true
    static var isOn: Bool { enabled }

    /// Runs `body` with recording off.
    public static func withoutRecording<R>(_ body: () throws -> R) rethrows -> R {
        try $enabled.withValue(false, operation: body)
    }
}
