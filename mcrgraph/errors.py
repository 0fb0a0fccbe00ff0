"""Domain exceptions. Every error a user can cause is an MCRGraphError with a message
that says what went wrong and how to fix it; the CLI prints it as one line."""


class MCRGraphError(Exception):
    """Base class of all mcrgraph errors."""


class UnknownMCRError(MCRGraphError, KeyError):
    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class DuplicateMCRError(MCRGraphError):
    pass


class UnknownModalityError(MCRGraphError, ValueError):
    pass


class EncoderOutputError(MCRGraphError):
    """A plugin's encode() returned something that breaks the MCR contract."""


class EncoderError(MCRGraphError):
    """A plugin's encode() raised."""


class DataError(MCRGraphError, ValueError):
    """Items or embeddings that cannot be used (empty, NaN, wrong shape, unreadable)."""


class ConnectorFileError(MCRGraphError):
    """A stored connector is missing, corrupt, foreign or does not match its card."""


class ConnectorMismatchError(MCRGraphError):
    """A connector was trained on encoders that differ from the installed ones."""


class StoreError(MCRGraphError):
    """The store cannot be written or read."""


class NoPathError(MCRGraphError):
    """No trained node covers both modalities; the message lists the connect steps that would."""

    def __init__(self, message, steps=()):
        super().__init__(message)
        self.steps = list(steps)


class ConfigError(MCRGraphError, ValueError):
    pass


class AmbiguousPathError(MCRGraphError):
    """Several spaces compare two modalities equally well and none is preferred (all present,
    all the user's or all demo); the message names them and the pins that choose. ``pins``
    holds one ``(source, target)`` pair of pinned modality strings per candidate."""

    def __init__(self, message, pins=()):
        super().__init__(message)
        self.pins = list(pins)


class DownloadError(MCRGraphError):
    """A file could not be downloaded (offline, refused, cut too often); the message names
    the address and where to put a copy fetched by hand."""


class ChecksumError(DownloadError):
    """A downloaded file's digest differs from the one expected; nothing was kept."""


class UnknownGalleryError(DataError):
    """No gallery of that name is stored or offered by a plugin."""
