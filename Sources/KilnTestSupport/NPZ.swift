import Foundation

/// A reader for NumPy `.npz` archives as `np.savez` writes them (stored, not deflated, with
/// zip64 size fields) holding little-endian float64/float32 arrays. Test fixtures only.
public struct NPZArchive {
    public struct Array {
        public let shape: [Int]
        public let values: [Double]
    }

    public let arrays: [String: Array]

    public enum Failure: Error, CustomStringConvertible {
        case malformed(String)
        public var description: String { if case .malformed(let m) = self { return "npz: \(m)" }; return "npz" }
    }

    public init(contentsOf url: URL) throws {
        let data = try [UInt8](Data(contentsOf: url))
        var arrays: [String: Array] = [:]
        var offset = 0
        func u16(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func u64(_ o: Int) -> Int { u32(o) | u32(o + 4) << 32 }
        while offset + 30 <= data.count, u32(offset) == 0x0403_4B50 {
            let method = u16(offset + 8)
            guard method == 0 else { throw Failure.malformed("entry compressed with method \(method)") }
            var size = u32(offset + 18)
            let nameLength = u16(offset + 26), extraLength = u16(offset + 28)
            let nameStart = offset + 30
            guard nameStart + nameLength + extraLength <= data.count else { throw Failure.malformed("truncated header") }
            let name = String(decoding: data[nameStart..<(nameStart + nameLength)], as: UTF8.self)
            var extra = nameStart + nameLength
            let extraEnd = extra + extraLength
            while size == 0xFFFF_FFFF && extra + 4 <= extraEnd {
                let id = u16(extra), length = u16(extra + 2)
                if id == 1 { size = u64(extra + 4 + 8) }  // zip64: uncompressed, then compressed size
                extra += 4 + length
            }
            let start = extraEnd
            guard start + size <= data.count else { throw Failure.malformed("\(name) truncated") }
            let key = name.hasSuffix(".npy") ? String(name.dropLast(4)) : name
            arrays[key] = try Self.parseNPY(Swift.Array(data[start..<(start + size)]), name: name)
            offset = start + size
        }
        self.arrays = arrays
    }

    public subscript(name: String) -> Array? { arrays[name] }

    static func parseNPY(_ bytes: [UInt8], name: String) throws -> Array {
        guard bytes.count > 10, bytes[0] == 0x93, Swift.Array(bytes[1...5]) == Swift.Array("NUMPY".utf8) else {
            throw Failure.malformed("\(name) is not an .npy")
        }
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        let header = String(decoding: bytes[10..<(10 + headerLength)], as: UTF8.self)
        let dataStart = 10 + headerLength
        guard let shapeOpen = header.range(of: "'shape': ("), let shapeClose = header[shapeOpen.upperBound...].firstIndex(of: ")") else {
            throw Failure.malformed("\(name) header has no shape")
        }
        let shape = header[shapeOpen.upperBound..<shapeClose].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let count = shape.reduce(1, *)
        var values = [Double](repeating: 0, count: count)
        if header.contains("'<f8'") {
            guard bytes.count >= dataStart + 8 * count else { throw Failure.malformed("\(name) truncated") }
            for i in 0..<count {
                var bits: UInt64 = 0
                for b in 0..<8 { bits |= UInt64(bytes[dataStart + 8 * i + b]) << (8 * b) }
                values[i] = Double(bitPattern: bits)
            }
        } else if header.contains("'<f4'") {
            guard bytes.count >= dataStart + 4 * count else { throw Failure.malformed("\(name) truncated") }
            for i in 0..<count {
                var bits: UInt32 = 0
                for b in 0..<4 { bits |= UInt32(bytes[dataStart + 4 * i + b]) << (8 * b) }
                values[i] = Double(Float(bitPattern: bits))
            }
        } else {
            throw Failure.malformed("\(name) has an unsupported dtype: \(header)")
        }
        return Array(shape: shape, values: values)
    }
}
