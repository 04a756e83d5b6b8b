extension Duration {
    /// The duration in seconds, as a Double.
    package var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }

    /// The duration in whole milliseconds (rounded down).
    package var milliseconds: Int {
        let (s, attoseconds) = components
        return Int(s) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// The duration in whole microseconds (rounded down).
    package var microseconds: Int64 {
        let (s, attoseconds) = components
        return s * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
