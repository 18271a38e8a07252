"""Library bundles: what a library image holds, built from wheels, and its Python loader."""
