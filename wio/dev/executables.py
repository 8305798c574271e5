"""Finding the command-line programs wio drives (weed, rclone, mc, s3cmd).

pip puts the scripts of a virtual environment beside its interpreter. A venv that is used without
being activated (``.venv/bin/python -m pytest``, ``.venv/bin/wio dev``) has that folder off PATH, so
the interpreter's folder is searched first, then PATH.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

__all__ = ["find_executable"]


def find_executable(*names: str) -> str | None:
    """The first of ``names`` found beside ``sys.executable``, else on PATH; None when none is."""
    here = str(Path(sys.executable).parent)
    for name in names:
        found = shutil.which(name, path=here) or shutil.which(name)
        if found:
            return found
    return None
