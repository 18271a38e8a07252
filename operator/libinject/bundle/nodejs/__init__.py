"""Node.js bundles: the flavor's npm packages installed from a committed lock for every Linux
platform, pruned and deduplicated, and the loader every Node bundle starts with."""
