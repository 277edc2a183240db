"""Reading and writing depth files: 16-bit PNG in millimetres, .npy in metres or millimetres.

Every reader returns float32 metres with 0 where the sensor had no reading, and every failure is a `DataError`
naming the file.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from pose_tl.errors import DataError

DEPTH_SUFFIXES = (".png", ".npy")
MM_PER_M = 1000.0


def read_depth_png(path):
    """A single-channel 16-bit PNG of millimetres -> float32 metres [H, W]."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise DataError(f"{path}: expected a single-channel 16-bit depth PNG (millimetres); "
                                f"found mode {mode!r}")
            array = np.array(image)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: cannot decode PNG ({exc})") from None
    if array.ndim != 2:
        raise DataError(f"{path}: expected a 2-D depth image; found shape {array.shape}")
    return array.astype(np.float32) / MM_PER_M


def read_depth_npy(path, units="m"):
    """A 2-D .npy array in metres or millimetres -> float32 metres [H, W]; non-finite or <= 0 become 0."""
    try:  # memory-mapped: a header that promises more than the file holds fails here, not as a huge allocation
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError, MemoryError) as exc:
        raise DataError(f"{path}: cannot read .npy depth ({exc})") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or array.size == 0:
        raise DataError(f"{path}: expected a numeric 2-D depth array [H, W] with at least one pixel; "
                        f"found {array.dtype} {array.shape}")
    with np.errstate(all="ignore"):
        depth = np.array(array, dtype=np.float32)
    if units == "mm":
        depth = depth / MM_PER_M
    depth[~np.isfinite(depth) | (depth <= 0)] = 0.0
    return depth


def read_depth(path, npy_units="m"):
    """Read any supported depth file into float32 metres [H, W]."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: depth file not found")
    if path.suffix.lower() == ".png":
        return read_depth_png(path)
    if path.suffix.lower() == ".npy":
        return read_depth_npy(path, npy_units)
    raise DataError(f"{path}: unsupported depth file type; expected one of {list(DEPTH_SUFFIXES)}")


def read_valid_depth(path, npy_units="m"):
    """`read_depth`, refusing a frame with no valid pixel (a silently meaningless prediction otherwise)."""
    depth = read_depth(path, npy_units)
    if not np.any(depth > 0):
        raise DataError(f"{path}: depth holds no valid pixel (all zero, negative or non-finite)")
    return depth


def write_depth_png(path, depth_m):
    """float metres [H, W] -> 16-bit PNG of millimetres (0 = no reading), rounded to the nearest mm."""
    depth_mm = np.clip(np.round(np.nan_to_num(depth_m, nan=0.0, posinf=0.0) * MM_PER_M), 0, 65535)
    Image.fromarray(depth_mm.astype(np.uint16)).save(path)
