"""The graph of spaces: the graph over registered and connected spaces, the planner that picks a node
or a chain of connects, and the picture of the graph. May import: connect and everything below."""
