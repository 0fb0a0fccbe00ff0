"""What mcrgraph keeps on disk: the store folder and atomic writes, connector cards and folders,
training checkpoints, galleries' cards and rows, weight-file helpers and safe loading. May import: io (and errors, names)."""
