"""The embedded default: a miniature world of real signals (digits, letters, numbers, emoji,
event sounds, spoken words, extruded glyphs) and three small MCRs trained on it, ``mini-clip``
(image, text), ``mini-clap`` (audio, text) and ``mini-ulip`` (3d, image)."""
