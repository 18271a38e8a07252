"""Java bundles: the launcher agent every Java bundle starts with."""
