"""Library images: a bundle and the copy program in one layer, pushed without a Docker engine."""
