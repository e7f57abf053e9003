import Foundation

/// A safetensors file, memory-mapped and validated.
///
/// Layout: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …, "__metadata__": {…}}`),
/// then the tensor bytes; offsets are relative to the end of the header. The header is size-
/// limited and checked before use: known dtypes, shapes whose byte size equals the offset range
/// (overflow-checked), and ranges that cover the data exactly — no overlap, no hole, nothing past
/// the end of the file.
public final class SafetensorsFile: @unchecked Sendable {
    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        /// Absolute byte range in the file.
        public let range: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let tensors: [Tensor]
    public let metadata: [String: String]
    private let file: MappedFile?
    private let bytes: UnsafeRawBufferPointer
    private let index: [String: Int]

    /// Headers larger than this are refused (real files use a few kilobytes to a megabyte).
    public static let maximumHeaderBytes = 100 << 20

    public convenience init(path: String) throws {
        let file = try MappedFile(path: path)
        try self.init(file: file, bytes: file.bytes)
    }

    /// Parses bytes that stay valid for the life of this object.
    public convenience init(unsafeBytes bytes: UnsafeRawBufferPointer) throws {
        try self.init(file: nil, bytes: bytes)
    }

    private init(file: MappedFile?, bytes: UnsafeRawBufferPointer) throws {
        self.file = file
        self.bytes = bytes
        guard bytes.count >= 8 else { throw SafetensorsError.truncated("the 8-byte header length (file has \(bytes.count) bytes)") }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(Self.maximumHeaderBytes) else {
            throw SafetensorsError.invalid("header length \(declared) exceeds the \(Self.maximumHeaderBytes)-byte limit")
        }
        let headerLength = Int(declared)
        guard headerLength <= bytes.count - 8 else {
            throw SafetensorsError.truncated("the header needs \(headerLength) bytes, \(bytes.count - 8) remain")
        }
        let headerData = Data(bytes[8..<(8 + headerLength)])
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: headerData)
        } catch {
            throw SafetensorsError.invalid("the header is not JSON (\(error.localizedDescription))")
        }
        guard let header = object as? [String: Any] else { throw SafetensorsError.invalid("the header is not a JSON object") }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [Tensor] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let entries = value as? [String: Any] else { throw SafetensorsError.invalid("__metadata__ is not an object") }
                for (k, v) in entries {
                    guard let s = v as? String else { throw SafetensorsError.invalid("__metadata__ value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw SafetensorsError.invalid("tensor \(name) is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw SafetensorsError.invalid("tensor \(name) has no dtype") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw SafetensorsError.invalid("tensor \(name) has dtype \(dtypeName), which Kiln does not read")
            }
            guard let shapeValues = entry["shape"] as? [Any] else { throw SafetensorsError.invalid("tensor \(name) has no shape") }
            var shape: [Int] = []
            var elements = 1
            for dimension in shapeValues {
                guard let n = Self.integer(dimension), n >= 0 else {
                    throw SafetensorsError.invalid("tensor \(name) has a bad dimension \(dimension)")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw SafetensorsError.invalid("tensor \(name) shape \(shapeValues) overflows") }
                elements = product
                shape.append(n)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let begin = Self.integer(offsets[0]), let end = Self.integer(offsets[1]), 0 <= begin, begin <= end else {
                throw SafetensorsError.invalid("tensor \(name) has bad data_offsets \(entry["data_offsets"] ?? "none")")
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.byteWidth)
            guard !overflow, byteCount == end - begin else {
                throw SafetensorsError.invalid("tensor \(name): shape \(shape) of \(dtypeName) is \(byteCount) bytes but data_offsets span \(end - begin)")
            }
            guard end <= dataLength else {
                throw SafetensorsError.truncated("tensor \(name) ends at data byte \(end), the data has \(dataLength)")
            }
            tensors.append(Tensor(name: name, dtype: dtype, shape: shape, range: (dataStart + begin)..<(dataStart + end)))
        }
        // The ranges must tile the data exactly: sorted, each starting where the last ended.
        tensors.sort { ($0.range.lowerBound, $0.range.upperBound) < ($1.range.lowerBound, $1.range.upperBound) }
        var expected = dataStart
        for t in tensors where !t.range.isEmpty {
            if t.range.lowerBound < expected { throw SafetensorsError.invalid("tensor \(t.name) overlaps the tensor before it") }
            if t.range.lowerBound > expected { throw SafetensorsError.invalid("there is a hole of \(t.range.lowerBound - expected) bytes before tensor \(t.name)") }
            expected = t.range.upperBound
        }
        guard expected == bytes.count else {
            throw SafetensorsError.invalid("\(bytes.count - expected) bytes after the last tensor belong to no tensor")
        }
        self.tensors = tensors
        self.metadata = metadata
        index = Dictionary(tensors.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    static func integer(_ value: Any) -> Int? {
        guard let n = value as? NSNumber, String(cString: n.objCType) != "c" else { return nil }  // not a JSON bool
        let d = n.doubleValue
        guard d == d.rounded(), abs(d) < 9.0e15 else { return nil }
        return n.intValue
    }

    public func tensor(named name: String) -> Tensor? { index[name].map { tensors[$0] } }

    /// The bytes of `tensor`, in place in the mapped file.
    public func data(of tensor: Tensor) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[tensor.range])
    }
}

/// Element types of safetensors tensors.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    public var byteWidth: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

public enum SafetensorsError: Error, Equatable, CustomStringConvertible {
    case truncated(String)
    case invalid(String)
    case cannotWrite(String)

    public var description: String {
        switch self {
        case .truncated(let m): return "truncated safetensors file: \(m)"
        case .invalid(let m): return "invalid safetensors file: \(m)"
        case .cannotWrite(let m): return "cannot write safetensors file: \(m)"
        }
    }
}

/// Writes safetensors files atomically: a temporary file beside the target, fsync, then rename,
/// so a crash leaves either the old file or the complete new one.
public enum SafetensorsWriter {
    public struct Entry {
        public var name: String
        public var dtype: SafetensorsDType
        public var shape: [Int]
        public var bytes: Data
        public init(name: String, dtype: SafetensorsDType, shape: [Int], bytes: Data) {
            (self.name, self.dtype, self.shape, self.bytes) = (name, dtype, shape, bytes)
        }
    }

    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let ordered = entries.sorted { $0.name < $1.name }
        guard Set(ordered.map(\.name)).count == ordered.count else { throw SafetensorsError.cannotWrite("duplicate tensor names") }
        for e in ordered {
            guard e.name != "__metadata__", e.shape.allSatisfy({ $0 >= 0 }),
                  e.shape.reduce(1, *) * e.dtype.byteWidth == e.bytes.count else {
                throw SafetensorsError.cannotWrite("tensor \(e.name): \(e.bytes.count) bytes do not fit shape \(e.shape) of \(e.dtype.rawValue)")
            }
            header[e.name] = ["dtype": e.dtype.rawValue, "shape": e.shape, "data_offsets": [offset, offset + e.bytes.count]]
            offset += e.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad so the data starts 8-byte aligned
        var output = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { output.append(contentsOf: $0) }
        output.append(json)
        for e in ordered { output.append(e.bytes) }
        do {
            try DurableFile.write(output, to: path)
        } catch {
            throw SafetensorsError.cannotWrite("\(error)")
        }
    }

}
