"""The embedded default: a miniature world of real signals (digits, letters, numbers, emoji,
event sounds, spoken words, extruded glyphs) and three small MCRs trained on it, ``mini-clip``
(image, text), ``mini-clap`` (audio, text) and ``mini-ulip`` (3d, image).

A distribution of its own (``mcrgraph-mini``), apart from the core ``mcrgraph`` wheel: its code is
Apache-2.0, but its data and the weights trained on it derive from CC-BY-SA, CC-BY and GPL-2
sources (``data/SOURCES.md``). mcrgraph finds it through the entry point ``mini`` in the
``mcrgraph`` group (``mcrgraph_mini.plugin``); this package imports nothing heavy by itself."""
