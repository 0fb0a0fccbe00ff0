"""The spaces (MCRs): the base class, plugins and their hooks, the registry, connected spaces, encoding
with its cache and fingerprints, lineage. May import: io, store, ranking, methods."""
