"""What users do with a space: classify and search, galleries kept for search, localization heat maps, retention (fidelity),
label-free criteria for choosing a connector's configuration (selection), distributed embedding, the rows every
evaluation world runs (preset_rows). May import: planning and everything below."""
