import Foundation
import KilnFormats
import KilnKernels

/// Quantizes a GGUF model into a llama-quantize file type, writing the file llama-quantize writes
/// from the same input: the same tensor types, the same blocks, the same metadata in the same
/// order, byte for byte.
///
/// The layout follows llama.cpp's writer: the input's metadata in its order (split keys dropped),
/// then `general.quantization_version` (2) and `general.file_type`; the tensors sorted by layer
/// number then name; each tensor's data padded with zeros to the alignment. A tensor keeping its
/// type is copied as stored; one changing type is expanded to f32 and quantized row by row.
public enum ModelQuantizer {
    public struct Options: Sendable {
        public var scheme: QuantizationScheme
        /// Accept already-quantized tensors as input (they are expanded to f32 first).
        public var allowRequantize = false
        public init(scheme: QuantizationScheme, allowRequantize: Bool = false) {
            self.scheme = scheme
            self.allowRequantize = allowRequantize
        }
    }

    /// One tensor of the output and what happened to it.
    public struct TensorPlan: Sendable {
        public let name: String
        public let shape: [Int]
        public let sourceType: GGMLType
        public let targetType: GGMLType
        public let sourceBytes: Int
        public let targetBytes: Int
        public var isConverted: Bool { sourceType != targetType }
    }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Progress after each tensor: tensors done, their count, output bytes written.
    public struct Progress: Sendable {
        public let tensorsDone: Int
        public let tensorCount: Int
        public let tensor: String
    }

    public static let quantizationVersion: UInt32 = 2

    /// The output's tensors in file order with their types (no data touched).
    public static func plan(_ file: GGUFFile, options: Options) throws -> (tensors: [TensorPlan], fallbacks: [String]) {
        var selector = TensorTypeSelector(scheme: options.scheme, facts: QuantizationModelFacts(file: file))
        var plans: [TensorPlan] = []
        for tensor in file.tensors.sorted(by: tensorOrder) {
            let target = selector.type(name: tensor.name, shape: tensor.shape, current: tensor.type)
            let entry = GGUFEncoder.TensorEntry(name: tensor.name, shape: tensor.shape, type: target)
            guard let targetBytes = entry.byteCount else {
                throw Failure("tensor \(tensor.name): shape \(tensor.shape) does not fit type \(target)")
            }
            if target != tensor.type {
                guard QuantizedOps.canDecode(ggmlType: tensor.type.rawValue) else {
                    throw Failure("tensor \(tensor.name) has type \(tensor.type), which Kiln cannot convert to \(target)")
                }
                guard QuantizedOps.canEncode(ggmlType: target.rawValue) else {
                    throw Failure("tensor \(tensor.name): Kiln cannot quantize into \(target)")
                }
                let quantized = (tensor.type.blockGeometry?.elements ?? 1) > 1
                if quantized && !options.allowRequantize {
                    throw Failure("tensor \(tensor.name) is already \(tensor.type): requantizing loses accuracy; pass --allow-requantize to do it anyway")
                }
            }
            plans.append(TensorPlan(name: tensor.name, shape: tensor.shape, sourceType: tensor.type, targetType: target,
                                    sourceBytes: tensor.byteCount, targetBytes: targetBytes))
        }
        return (plans, selector.fallbacks)
    }

    /// llama.cpp's tensor order: by the N of "blk.N." (other tensors first), then by name bytes.
    static func tensorOrder(_ a: GGUFTensor, _ b: GGUFTensor) -> Bool {
        let la = TensorTypeSelector.layerNumber(a.name) ?? -1, lb = TensorTypeSelector.layerNumber(b.name) ?? -1
        if la != lb { return la < lb }
        return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
    }

    /// The output metadata: the input's, split keys removed, quantization version and file type last.
    static func metadata(of file: GGUFFile, scheme: QuantizationScheme) -> [(key: String, value: GGUFValue)] {
        let replaced: Set = ["general.quantization_version", "general.file_type", "split.no", "split.count", "split.tensors.count"]
        return file.metadata.filter { !replaced.contains($0.key) } + [
            ("general.quantization_version", .uint32(quantizationVersion)),
            ("general.file_type", .uint32(scheme.fileType)),
        ]
    }

    /// Quantizes `input` into `output` (written to a temporary file and renamed when complete).
    @discardableResult
    public static func quantize(
        input: String, output: String, options: Options, pool: ThreadPool = .shared,
        progress: (Progress) -> Void = { _ in }
    ) throws -> [TensorPlan] {
        if isSameFile(input, output) { throw Failure("\(output) is the input file: choose another output path") }
        let file = try GGUFFile(path: input)
        let (plans, _) = try plan(file, options: options)
        let alignment = file.alignment
        let entries = plans.map { GGUFEncoder.TensorEntry(name: $0.name, shape: $0.shape, type: $0.targetType) }
        let header = try GGUFEncoder.header(metadata: metadata(of: file, scheme: options.scheme), tensors: entries,
                                            alignment: alignment)
        let writer = try DurableFile.Writer(path: output)
        try writer.write(header.bytes)
        for (index, plan) in plans.enumerated() {
            let tensor = file.tensor(named: plan.name)!
            let data = file.data(of: tensor)
            if plan.isConverted {
                try convert(plan, data: data, pool: pool, writer: writer)
            } else {
                try writer.write(data)
            }
            try writer.writeZeros(GGUFEncoder.padded(plan.targetBytes, to: alignment) - plan.targetBytes)
            progress(Progress(tensorsDone: index + 1, tensorCount: plans.count, tensor: plan.name))
        }
        try writer.commit()
        return plans
    }

    /// Expands a tensor to f32 and quantizes it, a slab of rows at a time (rows are independent,
    /// so the slab size does not change the bytes).
    private static func convert(_ plan: TensorPlan, data: UnsafeRawBufferPointer, pool: ThreadPool, writer: DurableFile.Writer) throws {
        let columns = plan.shape[0]
        let rows = plan.shape.dropFirst().reduce(1, *)
        let sourceRowBytes = plan.sourceBytes / rows, targetRowBytes = plan.targetBytes / rows
        let slabRows = max(1, min(rows, (16 << 20) / columns))
        var floats = [Float](repeating: 0, count: slabRows * columns)
        var blocks = [UInt8](repeating: 0, count: slabRows * targetRowBytes)
        var row = 0
        while row < rows {
            let count = min(slabRows, rows - row)
            let source = UnsafeRawBufferPointer(rebasing: data[(row * sourceRowBytes)..<((row + count) * sourceRowBytes)])
            try floats.withUnsafeMutableBufferPointer { f in
                QuantizedOps.decode(ggmlType: plan.sourceType.rawValue, bytes: source, count: count * columns, into: f)
                if let bad = QuantizedOps.firstNonFinite(UnsafeBufferPointer(rebasing: f[0..<(count * columns)])) {
                    let element = row * columns + bad
                    throw Failure("tensor \(plan.name) holds a non-finite value (\(f[bad])) at row \(element / columns), column \(element % columns)")
                }
                blocks.withUnsafeMutableBytes { out in
                    _ = QuantizedOps.encode(ggmlType: plan.targetType.rawValue, rows: count, columns: columns,
                                            from: UnsafeBufferPointer(f), into: out, pool: pool)
                }
            }
            try blocks.withUnsafeBytes { try writer.write(UnsafeRawBufferPointer(rebasing: $0[0..<(count * targetRowBytes)])) }
            row += count
        }
    }

    /// Whether two paths name the same file (hard links and symbolic links included).
    static func isSameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        guard stat(a, &sa) == 0, stat(b, &sb) == 0 else { return false }
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino
    }
}
