"""A run's output folder: created and checked writable before any work, never mixed with a previous run's files."""

from pathlib import Path

from pose_tl.errors import OutputError


def prepare_output_dir(out_dir, allow_previous_run):
    """Create `out_dir`; refuse to mix a new run into a previous one unless resuming (`allow_previous_run`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: output path exists and is not a folder")
    previous = (out_dir / "checkpoints").exists()
    if previous and not allow_previous_run:
        raise OutputError(f"{out_dir}: holds a previous run; pass --resume to continue it or --out for a new folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot write to the output folder ({exc.strerror})") from None
    return out_dir
