"""Files from outside: verified downloads, the default recipes and their corpora on the hub, the
papers' official heads, plugins' declared weight files. May import: spaces and everything below."""
