/// A GGUF model file (versions 2 and 3), memory-mapped and validated.
///
/// Layout (little-endian):
///
///     magic "GGUF" u32 · version u32 · tensor count u64 · metadata count u64
///     metadata × count: key (u64 length + UTF-8) · value type u32 · value
///         value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string,
///         9 array (element type u32 · count u64 · elements), 10 u64, 11 i64, 12 f64
///     tensor info × count: name · dimension count u32 · dimensions u64 × n · type u32 · offset u64
///     padding to `general.alignment` (default 32) · tensor data (offsets relative to here)
///
/// Every count, length, shape, type and offset is checked against the file size with
/// overflow-checked arithmetic before anything is allocated or read, so a corrupt or hostile file
/// is refused with a `GGUFError` naming the field, never a crash or a huge allocation.
public final class GGUFFile: @unchecked Sendable {
    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    public let tensors: [GGUFTensor]
    /// Alignment of tensor data (general.alignment).
    public let alignment: Int
    /// Byte offset of the tensor data section in the file.
    public let dataOffset: Int

    private let file: MappedFile?
    private let bytes: UnsafeRawBufferPointer
    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    /// Deepest nesting of arrays accepted (real files use at most 2).
    public static let maximumArrayDepth = 8

    /// Opens and validates the file at `path`.
    public convenience init(path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(file: file, bytes: file.bytes)
    }

    /// Parses bytes that stay valid for the life of this object (tests, embedded data).
    public convenience init(unsafeBytes bytes: UnsafeRawBufferPointer) throws {
        try self.init(file: nil, bytes: bytes)
    }

    private init(file: MappedFile?, bytes: UnsafeRawBufferPointer) throws {
        self.file = file
        self.bytes = bytes
        var cursor = Cursor(bytes: bytes)
        let magic = try cursor.u32("magic")
        guard magic == 0x4655_4747 else { throw GGUFError.notGGUF(magic: magic) }
        version = try cursor.u32("version")
        guard version == 2 || version == 3 else { throw GGUFError.unsupportedVersion(version) }
        let tensorCount = try cursor.count("tensor count", minimumElementBytes: 4 + 8 + 4 + 4 + 8)
        let metadataCount = try cursor.count("metadata count", minimumElementBytes: 8 + 4 + 1)

        var metadata: [(key: String, value: GGUFValue)] = []
        var metadataIndex: [String: Int] = [:]
        for index in 0..<metadataCount {
            let key = try cursor.string("metadata key #\(index)")
            guard metadataIndex[key] == nil else { throw GGUFError.invalid(field: "metadata key \(key)", reason: "appears twice") }
            let type = try cursor.u32("type of \(key)")
            let value = try cursor.value(type: type, field: key, depth: 0)
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }

        var alignment = 32
        if let index = metadataIndex["general.alignment"] {
            guard let value = metadata[index].value.integer, value > 0, value & (value - 1) == 0, value <= 1 << 30 else {
                throw GGUFError.invalid(field: "general.alignment", reason: "must be a positive power of two, got \(metadata[index].value)")
            }
            alignment = value
        }

        var infos: [(name: String, shape: [Int], type: GGMLType, offset: Int)] = []
        var tensorIndex: [String: Int] = [:]
        for index in 0..<tensorCount {
            let name = try cursor.string("tensor name #\(index)")
            guard tensorIndex[name] == nil else { throw GGUFError.invalid(field: "tensor \(name)", reason: "appears twice") }
            let dimensions = try cursor.u32("dimension count of \(name)")
            guard (1...4).contains(dimensions) else {
                throw GGUFError.invalid(field: "tensor \(name)", reason: "has \(dimensions) dimensions (1 to 4 allowed)")
            }
            var shape: [Int] = []
            for d in 0..<Int(dimensions) {
                let size = try cursor.u64("dimension \(d) of \(name)")
                guard size > 0, size <= UInt64(Int32.max) else {
                    throw GGUFError.invalid(field: "tensor \(name)", reason: "dimension \(d) is \(size)")
                }
                shape.append(Int(size))
            }
            let type = GGMLType(rawValue: try cursor.u32("type of \(name)"))
            let offset = try cursor.u64("data offset of \(name)")
            guard offset <= UInt64(bytes.count) else {
                throw GGUFError.invalid(field: "tensor \(name)", reason: "data offset \(offset) is past the end of the file")
            }
            tensorIndex[name] = infos.count
            infos.append((name, shape, type, Int(offset)))
        }

        // The data section starts at the next multiple of the alignment.
        let (padded, overflow) = cursor.offset.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw GGUFError.invalid(field: "data section", reason: "offset overflows") }
        let dataOffset = padded / alignment * alignment
        guard tensorCount == 0 || dataOffset <= bytes.count else {
            throw GGUFError.truncated(field: "tensor data", offset: dataOffset, needed: 1, available: 0)
        }

        var tensors: [GGUFTensor] = []
        for info in infos {
            guard let (blockElements, blockBytes) = info.type.blockGeometry else {
                throw GGUFError.unsupportedTensorType(tensor: info.name, type: info.type)
            }
            var elements = 1
            for size in info.shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: size)
                guard !overflow, product <= 1 << 40 else {
                    throw GGUFError.invalid(field: "tensor \(info.name)", reason: "shape \(info.shape) is too large")
                }
                elements = product
            }
            guard info.shape[0] % blockElements == 0 else {
                throw GGUFError.invalid(field: "tensor \(info.name)",
                                        reason: "first dimension \(info.shape[0]) is not a multiple of the \(info.type) block size \(blockElements)")
            }
            let byteCount = elements / blockElements * blockBytes
            guard info.offset % alignment == 0 else {
                throw GGUFError.invalid(field: "tensor \(info.name)", reason: "data offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            let start = dataOffset + info.offset
            let (end, endOverflow) = start.addingReportingOverflow(byteCount)
            guard !endOverflow, end <= bytes.count else {
                throw GGUFError.truncated(field: "data of tensor \(info.name)", offset: start, needed: byteCount,
                                          available: max(0, bytes.count - start))
            }
            tensors.append(GGUFTensor(name: info.name, shape: info.shape, type: info.type, fileOffset: start, byteCount: byteCount))
        }

        self.metadata = metadata
        self.metadataIndex = metadataIndex
        self.tensors = tensors
        self.tensorIndex = tensorIndex
        self.alignment = alignment
        self.dataOffset = dataOffset
    }

    // MARK: lookups

    public subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    public func tensor(named name: String) -> GGUFTensor? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of `tensor`, in place in the mapped file.
    public func data(of tensor: GGUFTensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[tensor.fileOffset..<(tensor.fileOffset + tensor.byteCount)])
    }

    public func string(_ key: String) throws -> String {
        guard let value = self[key] else { throw GGUFError.missingKey(key) }
        guard case .string(let s) = value else { throw GGUFError.wrongType(key: key, expected: "string", found: value.typeName) }
        return s
    }

    public func integer(_ key: String) throws -> Int {
        guard let value = self[key] else { throw GGUFError.missingKey(key) }
        guard let n = value.integer else { throw GGUFError.wrongType(key: key, expected: "integer", found: value.typeName) }
        return n
    }

    public func number(_ key: String) throws -> Double {
        guard let value = self[key] else { throw GGUFError.missingKey(key) }
        guard let n = value.number else { throw GGUFError.wrongType(key: key, expected: "number", found: value.typeName) }
        return n
    }

    public func bool(_ key: String) throws -> Bool {
        guard let value = self[key] else { throw GGUFError.missingKey(key) }
        guard case .bool(let b) = value else { throw GGUFError.wrongType(key: key, expected: "bool", found: value.typeName) }
        return b
    }

    public func array(_ key: String) throws -> GGUFArray {
        guard let value = self[key] else { throw GGUFError.missingKey(key) }
        guard case .array(let a) = value else { throw GGUFError.wrongType(key: key, expected: "array", found: value.typeName) }
        return a
    }

    public func strings(_ key: String) throws -> [String] {
        let a = try array(key)
        guard case .string(let s) = a else { throw GGUFError.wrongType(key: key, expected: "array of string", found: "array of \(a.elementTypeName)") }
        return s
    }
}

/// Where one tensor's data is and what it holds. `shape` is in ggml order: shape[0] is the
/// contiguous (row) dimension.
public struct GGUFTensor: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType
    /// Absolute byte offset in the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}
