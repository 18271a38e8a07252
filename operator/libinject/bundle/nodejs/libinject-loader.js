// libinject-loader.js: a placeholder; the loader's own branch replaces this file.
