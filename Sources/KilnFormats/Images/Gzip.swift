import CKilnZlib
import Foundation

/// gzip (RFC 1952) decompression through zlib, with a ceiling on the output so a corrupt or
/// hostile file cannot exhaust memory.
public enum Gzip {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Whether `data` starts with the gzip magic bytes 1f 8b.
    public static func isCompressed(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1f && data[data.startIndex + 1] == 0x8b
    }

    public static func decompress(_ data: Data, limit: Int = 1 << 30) throws -> Data {
        var stream = z_stream()
        // 16 + 15 window bits: a gzip wrapper around a full-size deflate window.
        guard inflateInit2_(&stream, 16 + 15, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        let status: Int32 = data.withUnsafeBytes { (input: UnsafeRawBufferPointer) -> Int32 in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let result: Int32 = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    let r = inflate(&stream, Z_NO_FLUSH)
                    output.append(out.baseAddress!, count: out.count - Int(stream.avail_out))
                    return r
                }
                if result == Z_STREAM_END { return result }
                if result != Z_OK { return result }
                if output.count > limit { return Z_MEM_ERROR }
                if stream.avail_in == 0 && stream.avail_out != 0 { return Z_BUF_ERROR }  // input ended early
            }
        }
        switch status {
        case Z_STREAM_END: return output
        case Z_MEM_ERROR: throw Failure(description: "gzip data expands beyond \(limit) bytes")
        case Z_BUF_ERROR: throw Failure(description: "gzip data is truncated")
        default: throw Failure(description: "gzip data is corrupt (zlib status \(status))")
        }
    }

    /// CRC-32 (as in gzip and PNG chunks) of `bytes`.
    public static func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
        let array = Array(bytes)
        return array.withUnsafeBufferPointer { UInt32(CKilnZlib.crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}
