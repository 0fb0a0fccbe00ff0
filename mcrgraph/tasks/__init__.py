"""What users do with a space: classify and search, galleries kept for search, localization heat maps, retention (fidelity),
distributed embedding. May import: planning and everything below."""
