"""The local search page and HTTP API over the graph of spaces (``mcrgraph serve``): a FastAPI
app (app.py) over the galleries (tasks), with uploads checked by content (uploads.py), gallery
items served only from inside their gallery (items.py), connects run in the background
(jobs.py) and the page itself (static/). May import: everything (the interface, beside cli/)."""
from .app import create_app, run  # noqa: F401
