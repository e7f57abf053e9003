import KilnServices

/// A model path as the user gave it, or found by name in the models directories (ModelLocator).
func modelPath(_ given: String) throws -> String {
    do {
        return try ModelLocator().resolve(given).path
    } catch let missing as ModelLocator.NotFound {
        throw CLIError(missing.description)
    }
}
