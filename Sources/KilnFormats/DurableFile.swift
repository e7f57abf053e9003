import Foundation

/// Replaces a file all at once: the bytes go to a temporary file beside it, are flushed to the
/// disk (fsync), and the temporary file is renamed over the target — so a crash leaves either the
/// old file or the complete new one, never a half-written file.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    public static func write(_ data: Data, to path: String) throws {
        let temporary = path + ".partial-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { raw -> Bool in
            var written = 0
            while written < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
                if n <= 0 { return false }
                written += n
            }
            return fsync(fd) == 0
        }
        let reason = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw Failure(description: "cannot write \(path): \(reason)")
        }
    }
}
