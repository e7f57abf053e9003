/// Writes GGUF version 3 headers: the metadata and tensor table, padded to the alignment, in the
/// byte layout ggml's own writer produces (so a file Kiln writes can be byte-identical to one
/// llama.cpp writes from the same content). Tensor data follows, each tensor padded with zeros to
/// the alignment; `GGUFTensorLayout` gives the offsets.
public enum GGUFEncoder {
    /// A tensor's entry in the table.
    public struct TensorEntry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let type: GGMLType
        public init(name: String, shape: [Int], type: GGMLType) {
            self.name = name
            self.shape = shape
            self.type = type
        }

        /// Bytes of the tensor's data (nil for a type without a known block layout).
        public var byteCount: Int? {
            guard let (elements, bytes) = type.blockGeometry, let first = shape.first, first % elements == 0 else { return nil }
            return shape.dropFirst().reduce(first / elements * bytes, *)
        }
    }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    /// The header bytes (magic through the padding before the data) and each tensor's offset in
    /// the data section.
    public static func header(
        metadata: [(key: String, value: GGUFValue)], tensors: [TensorEntry], alignment: Int = 32
    ) throws -> (bytes: [UInt8], offsets: [Int]) {
        var out: [UInt8] = []
        append(UInt32(0x4655_4747), to: &out)
        append(UInt32(3), to: &out)
        append(UInt64(tensors.count), to: &out)
        append(UInt64(metadata.count), to: &out)
        for (key, value) in metadata {
            append(string: key, to: &out)
            append(value, to: &out)
        }
        var offsets: [Int] = []
        var offset = 0
        for tensor in tensors {
            guard let size = tensor.byteCount else {
                throw Failure(description: "tensor \(tensor.name): type \(tensor.type) with shape \(tensor.shape) has no data layout")
            }
            append(string: tensor.name, to: &out)
            // ggml writes the dimensions up to the last one larger than 1.
            let dimensions = max(1, (tensor.shape.lastIndex { $0 > 1 } ?? 0) + 1)
            append(UInt32(dimensions), to: &out)
            for d in tensor.shape.prefix(dimensions) { append(UInt64(d), to: &out) }
            append(tensor.type.rawValue, to: &out)
            append(UInt64(offset), to: &out)
            offsets.append(offset)
            offset += padded(size, to: alignment)
        }
        out += [UInt8](repeating: 0, count: padded(out.count, to: alignment) - out.count)
        return (out, offsets)
    }

    /// `size` rounded up to a multiple of `alignment`.
    public static func padded(_ size: Int, to alignment: Int) -> Int { (size + alignment - 1) / alignment * alignment }

    // MARK: encoding

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out += $0 }
    }

    private static func append(string: String, to out: inout [UInt8]) {
        append(UInt64(string.utf8.count), to: &out)
        out += string.utf8
    }

    // GGUF's value type numbers by the names GGUFValue and GGUFArray give their types.
    private static let typeCodes: [String: UInt32] = [
        "uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5, "float32": 6, "bool": 7,
        "string": 8, "array": 9, "uint64": 10, "int64": 11, "float64": 12,
    ]

    private static func typeCode(_ value: GGUFValue) -> UInt32 {
        if case .array = value { return 9 }
        return typeCodes[value.typeName]!
    }

    private static func typeCode(_ array: GGUFArray) -> UInt32 { typeCodes[array.elementTypeName]! }

    private static func append(_ value: GGUFValue, to out: inout [UInt8]) {
        append(typeCode(value), to: &out)
        switch value {
        case .uint8(let v): out.append(v)
        case .int8(let v): out.append(UInt8(bitPattern: v))
        case .uint16(let v): append(v, to: &out)
        case .int16(let v): append(v, to: &out)
        case .uint32(let v): append(v, to: &out)
        case .int32(let v): append(v, to: &out)
        case .uint64(let v): append(v, to: &out)
        case .int64(let v): append(v, to: &out)
        case .float32(let v): append(v.bitPattern, to: &out)
        case .float64(let v): append(v.bitPattern, to: &out)
        case .bool(let v): out.append(v ? 1 : 0)
        case .string(let v): append(string: v, to: &out)
        case .array(let a): append(array: a, to: &out)
        }
    }

    private static func append(array: GGUFArray, to out: inout [UInt8]) {
        append(typeCode(array), to: &out)
        append(UInt64(array.count), to: &out)
        switch array {
        case .uint8(let a): out += a
        case .int8(let a): for v in a { out.append(UInt8(bitPattern: v)) }
        case .uint16(let a): for v in a { append(v, to: &out) }
        case .int16(let a): for v in a { append(v, to: &out) }
        case .uint32(let a): for v in a { append(v, to: &out) }
        case .int32(let a): for v in a { append(v, to: &out) }
        case .uint64(let a): for v in a { append(v, to: &out) }
        case .int64(let a): for v in a { append(v, to: &out) }
        case .float32(let a): for v in a { append(v.bitPattern, to: &out) }
        case .float64(let a): for v in a { append(v.bitPattern, to: &out) }
        case .bool(let a): for v in a { out.append(v ? 1 : 0) }
        case .string(let a): for v in a { append(string: v, to: &out) }
        case .array(let a): for v in a { append(array: v, to: &out) }
        }
    }
}
