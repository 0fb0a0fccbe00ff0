"""Built-in plugins: ordinary plugins that ship with mcrgraph (demo spaces, recipes, dataset evals).
May import: everything, like any plugin."""
