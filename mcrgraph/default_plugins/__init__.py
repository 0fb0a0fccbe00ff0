"""Built-in plugins: ordinary plugins that ship with mcrgraph."""
