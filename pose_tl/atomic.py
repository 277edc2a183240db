"""Write-then-rename, so a killed process leaves either the previous complete file or folder, or nothing."""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(destination):
    """Yield a temporary sibling path; on success it replaces `destination` (a file or a folder)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    tmp = tmp_dir / destination.name
    try:
        yield tmp
        if destination.is_dir() and tmp.is_dir():
            old = destination.parent / f".{destination.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(destination, old)
            os.replace(tmp, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, destination)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_json_atomic(path, data):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
