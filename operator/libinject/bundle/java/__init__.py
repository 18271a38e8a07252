"""Java bundles: the tracer's agent from Maven Central, verified against a committed lock, and
the launcher agent every Java bundle starts with."""
