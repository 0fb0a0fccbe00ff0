"""The spellings mcrgraph accepts for space and modality names (the store and the spaces both check them)."""
from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MODALITY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
