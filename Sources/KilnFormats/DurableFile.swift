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

extension DurableFile {
    /// A file written in pieces that appears at its path only when complete: the bytes go to a
    /// temporary file beside it, and `commit` flushes and renames it over the target. A writer
    /// dropped without `commit` removes its temporary file.
    public final class Writer {
        public let path: String
        private let temporary: String
        private var fd: Int32
        public private(set) var bytesWritten = 0

        public init(path: String) throws {
            self.path = path
            temporary = path + ".partial-\(getpid())"
            fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        }

        public func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard fd >= 0 else { throw Failure(description: "\(path) is already closed") }
            var done = 0
            while done < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
                done += n
            }
            bytesWritten += bytes.count
        }

        public func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }

        public func writeZeros(_ count: Int) throws {
            guard count > 0 else { return }
            try write([UInt8](repeating: 0, count: count))
        }

        /// Flushes the file to the disk and renames it to `path`.
        public func commit() throws {
            guard fd >= 0 else { throw Failure(description: "\(path) is already closed") }
            let synced = fsync(fd) == 0
            let reason = String(cString: strerror(errno))
            close(fd)
            fd = -1
            guard synced, rename(temporary, path) == 0 else {
                unlink(temporary)
                throw Failure(description: "cannot write \(path): \(synced ? String(cString: strerror(errno)) : reason)")
            }
        }

        deinit {
            if fd >= 0 {
                close(fd)
                unlink(temporary)
            }
        }
    }
}
