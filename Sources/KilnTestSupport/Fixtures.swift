import Foundation

/// Where the tests' fixtures live: `Tests/Fixtures/` in the checkout (recorded data, committed),
/// with the few large files `scripts/setup` fetches (llama.cpp's vocab-only GGUFs) beside them.
public enum Fixtures {
    public static var repositoryRoot: URL {
        // Sources/KilnTestSupport/Fixtures.swift → repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var directory: URL { repositoryRoot.appendingPathComponent("Tests/Fixtures") }

    /// A fixture by its path under `Tests/Fixtures/`.
    public static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }

    /// True on CI (CI=true), where a missing model or fixture must fail a test rather than skip it.
    public static var isCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return value == "true" || value == "1"
    }
}
