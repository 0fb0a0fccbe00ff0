"""Reading items from disk: media files (sound, images), point clouds, item lists, progress bars.
May import: mcrgraph.errors only; everything else in the package builds on it."""
