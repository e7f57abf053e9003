import Foundation

/// Where the shared, read-only fixtures live: $KILN_SHARED, else ../shared beside the checkout.
public enum Fixtures {
    public static var sharedDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["KILN_SHARED"] { return URL(fileURLWithPath: path) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared")
    }

    public static var repositoryRoot: URL {
        // Sources/KilnTestSupport/Fixtures.swift → repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static func shared(_ relativePath: String) -> URL {
        sharedDirectory.appendingPathComponent(relativePath)
    }

    /// True on CI (CI=true), where a missing model or fixture must fail a test rather than skip it.
    public static var isCI: Bool {
        let value = ProcessInfo.processInfo.environment["CI"]?.lowercased()
        return value == "true" || value == "1"
    }
}
