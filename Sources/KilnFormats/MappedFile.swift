#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory. Model files are read in place: pages load on first touch
/// and are shared with the page cache.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The whole file; valid while this object lives.
    public let bytes: UnsafeRawBufferPointer

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case cannotOpen(path: String, reason: String)
        case cannotMap(path: String, reason: String)

        public var description: String {
            switch self {
            case .cannotOpen(let path, let reason): return "cannot open \(path): \(reason)"
            case .cannotMap(let path, let reason): return "cannot map \(path): \(reason)"
            }
        }
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw Failure.cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw Failure.cannotMap(path: path, reason: String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
