"""Nearest-neighbour search over embeddings: exact chunked top-k, gallery indexes (FAISS), retrieval
metrics. May import: io (and errors)."""
