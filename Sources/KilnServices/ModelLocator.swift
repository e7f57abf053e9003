import Foundation

/// Finds model files the way users expect wherever `kiln` runs: a path that exists is used as
/// given; otherwise its last component is looked up in the models directories — `KILN_MODELS`
/// (a colon-separated list), then the `Checkpoints/` folder of the checkout that `scripts/setup`
/// filled (found by walking up from the executable). A model found nowhere is an error that lists
/// where it looked and how to get it.
public struct ModelLocator: Sendable {
    public static let defaultLanguageModel = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let defaultEmbeddingModel = "all-MiniLM-L6-v2"

    /// The folders searched, in order.
    public let directories: [URL]

    public init(directories: [URL]) { self.directories = directories }

    /// `KILN_MODELS`, then the checkout's `Checkpoints/`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment,
                executable: URL = ModelLocator.executableURL()) {
        var folders: [URL] = []
        if let list = environment["KILN_MODELS"] {
            folders += list.split(separator: ":").filter { !$0.isEmpty }.map { URL(fileURLWithPath: String($0), isDirectory: true) }
        }
        if let checkout = Self.checkout(containing: executable) {
            folders.append(checkout.appendingPathComponent("Checkpoints", isDirectory: true))
        }
        self.init(directories: folders)
    }

    public struct NotFound: Error, CustomStringConvertible {
        public let name: String
        public let searched: [String]
        public var description: String {
            let places = searched.isEmpty ? "" : " (looked in \(searched.joined(separator: ", ")))"
            return "model \(name) not found\(places); scripts/setup fetches the default models into the checkout's "
                + "Checkpoints/, or set KILN_MODELS to a folder that holds it"
        }
    }

    /// The model at `path`, or the first models directory's entry with its last component.
    public func resolve(_ path: String) throws -> URL {
        let given = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: given.path) { return given }
        let name = given.lastPathComponent
        for folder in directories {
            let candidate = folder.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        throw NotFound(name: path, searched: [given.deletingLastPathComponent().path] + directories.map(\.path))
    }

    /// The running executable (Linux: /proc/self/exe), or the first argument.
    public static func executableURL() -> URL {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return URL(fileURLWithPath: resolved)
        }
        return URL(fileURLWithPath: CommandLine.arguments.first ?? ".").standardizedFileURL
    }

    /// The nearest folder above `executable` with a Package.swift and a Checkpoints folder.
    static func checkout(containing executable: URL) -> URL? {
        var folder = executable.deletingLastPathComponent()
        while folder.path != "/" && !folder.path.isEmpty {
            let manifest = folder.appendingPathComponent("Package.swift").path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: manifest),
               FileManager.default.fileExists(atPath: folder.appendingPathComponent("Checkpoints").path, isDirectory: &isDirectory),
               isDirectory.boolValue {
                return folder
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }
}
