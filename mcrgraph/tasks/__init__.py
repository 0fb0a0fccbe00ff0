"""What users do with a space: classify and search, galleries kept for search, localization heat maps, retention (fidelity),
label-free criteria for choosing a connector's configuration (selection), distributed embedding. May import: planning and everything below."""
