"""Bad depth data through the CLI: every case exits 2 with one line naming the damaged file, never a traceback.

Training cases copy the session's tiny shapes dataset, damage one thing, and run `pose-tl train`: the pre-flight
check decodes every file before any model is built, so each case costs a fraction of a second. Prediction cases
reuse the session's trained run.
"""

import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error, invoke, tiny_recipe_dict, write_recipe

DAMAGED_CLASS = "cone"



# --- ways to damage a depth file ---------------------------------------------------------------------------

def _png_chunk(kind, payload):
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_bytes(width, height, bit_depth=16, pixels=b""):
    """A greyscale PNG whose header promises `width` x `height`; `pixels` need not fill it."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(pixels))
            + _png_chunk(b"IEND", b""))


def truncate_png(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def eight_bit_png(path):
    Image.fromarray(np.full((40, 48), 120, np.uint8)).save(path)
    return path


def rgb_png(path):
    Image.fromarray(np.full((40, 48, 3), 120, np.uint8)).save(path)
    return path


def all_zero_png(path):
    Image.fromarray(np.zeros((40, 48), np.uint16)).save(path)
    return path


def text_renamed_png(path):
    path.write_text("depth frame 17, exported by hand\n")
    return path


def decompression_bomb_png(path):
    """A valid header claiming 20000 x 10000 pixels (PIL's bomb limit is ~179 M) and hardly any data."""
    path.write_bytes(_png_bytes(20000, 10000))
    return path


def _replace_with_npy(path, array, allow_pickle=False):
    npy = path.with_suffix(".npy")
    path.unlink()
    np.save(npy, array, allow_pickle=allow_pickle)
    return npy


def three_channel_npy(path):
    return _replace_with_npy(path, np.full((40, 48, 3), 2.0, np.float32))


def non_finite_npy(path):
    array = np.full((40, 48), np.nan, np.float32)
    array[::2] = np.inf
    array[1::4] = -np.inf
    return _replace_with_npy(path, array)


def negative_npy(path):
    return _replace_with_npy(path, np.full((40, 48), -1.5, np.float32))


def pickled_object_npy(path):
    return _replace_with_npy(path, np.array([{"depth": 2.0}, None], dtype=object), allow_pickle=True)


def huge_shape_header_npy(path):
    """A 4x4 float32 .npy whose header is edited to promise 10^7 x 10^7 values (364 TiB)."""
    npy = _replace_with_npy(path, np.ones((4, 4), np.float32))
    data = npy.read_bytes()
    header_length = int.from_bytes(data[8:10], "little")
    header = data[10:10 + header_length].decode("latin1")
    edited = header.replace("(4, 4)", "(10000000, 10000000)")
    edited = edited[: header_length - 1].rstrip(" \n").ljust(header_length - 1) + "\n"
    assert len(edited) == header_length and "(10000000, 10000000)" in edited
    npy.write_bytes(data[:10] + edited.encode("latin1") + data[10 + header_length:])
    return npy


def zero_size_npy(path):
    return _replace_with_npy(path, np.zeros((0, 48), np.float32))


FILE_DAMAGE = {
    "truncated-png": truncate_png,
    "8-bit-png": eight_bit_png,
    "rgb-png": rgb_png,
    "all-zero-png": all_zero_png,
    "text-renamed-png": text_renamed_png,
    "3-channel-npy": three_channel_npy,
    "nan-inf-npy": non_finite_npy,
    "negative-npy": negative_npy,
    "pickled-object-npy": pickled_object_npy,
}
HUGE_NPY_HEADER_BUG = (
    "pose_tl/data/depth_io.py read_depth_npy catches (OSError, ValueError, EOFError) but np.load allocates the shape "
    "its header promises before reading, so a 100-byte file raises MemoryError")
ZERO_SIZE_NPY_BUG = (
    "pose_tl/data/depth_io.py read_depth_npy accepts a 2-D array with no pixels (shape (0, 48)); run.predict passes "
    "it to the model and TensorFlow raises InvalidArgumentError (train is saved only by its no-valid-pixel check)")
DECOMPRESSION_BOMB_BUG = (
    "pose_tl/data/depth_io.py read_depth_png catches (OSError, ValueError, SyntaxError) but PIL's Image.open raises "
    "PIL.Image.DecompressionBombError (an Exception subclass) for a header over ~179 M pixels, so it escapes")


# --- training on a damaged folder dataset --------------------------------------------------------------------

@pytest.fixture
def dataset(shapes_root, tmp_path):
    """A private copy of the session's shapes dataset that a test may damage."""
    return shutil.copytree(shapes_root, tmp_path / "data")


def train_on(root, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", tiny_recipe_dict(root))
    out = tmp_path / "run"
    return invoke("train", recipe, "--out", out), out


def assert_rejected_before_training(result, out, damaged):
    assert_one_line_error(result, damaged)
    assert not (out / "checkpoints").exists(), "training started before the data was checked"


@pytest.mark.parametrize("damage", [
    *FILE_DAMAGE.values(),
    zero_size_npy,
    decompression_bomb_png,
    huge_shape_header_npy,
], ids=[*FILE_DAMAGE, "zero-size-npy", "decompression-bomb-png", "huge-shape-header-npy"])
def test_train_names_a_damaged_depth_file(dataset, tmp_path, damage):
    damaged = damage(sorted((dataset / DAMAGED_CLASS).glob("*.png"))[1])
    result, out = train_on(dataset, tmp_path)
    assert_rejected_before_training(result, out, damaged)


def test_train_names_an_empty_class_folder(dataset, tmp_path):
    empty = dataset / DAMAGED_CLASS
    for path in empty.iterdir():
        path.unlink()
    result, out = train_on(dataset, tmp_path)
    assert_rejected_before_training(result, out, empty)
    assert "no depth files" in result.output


def test_train_names_a_dataset_root_without_class_folders(tmp_path):
    root = tmp_path / "empty_data"
    root.mkdir()
    (root / "stray.png").write_bytes(b"")  # files beside, not inside, class folders are no classes
    result, out = train_on(root, tmp_path)
    assert_rejected_before_training(result, out, root)
    assert "class folders" in result.output


def test_train_names_a_class_folder_that_holds_only_other_files(dataset, tmp_path):
    folder = dataset / DAMAGED_CLASS
    for path in folder.iterdir():
        path.rename(path.with_suffix(".jpg"))
    result, out = train_on(dataset, tmp_path)
    assert_rejected_before_training(result, out, folder)


# --- predicting with the session's trained model -------------------------------------------------------------

def predict(trained_run, *files):
    out, _ = trained_run
    return invoke("predict", out / "saved_model", *files)


def test_predict_names_a_missing_file(trained_run, shapes_root, tmp_path):
    good = sorted((shapes_root / "box").glob("*.png"))[0]
    missing = tmp_path / "no_such_frame.png"
    result = predict(trained_run, good, missing)
    assert_one_line_error(result, missing, "not found")


@pytest.mark.parametrize("damage", [
    truncate_png, rgb_png, text_renamed_png, three_channel_npy, pickled_object_npy,
    decompression_bomb_png,
    huge_shape_header_npy,
    zero_size_npy,
], ids=["truncated-png", "rgb-png", "text-renamed-png", "3-channel-npy", "pickled-object-npy",
        "decompression-bomb-png", "huge-shape-header-npy", "zero-size-npy"])
def test_predict_names_a_damaged_depth_file(trained_run, shapes_root, tmp_path, damage):
    frame = tmp_path / "frame.png"
    shutil.copyfile(sorted((shapes_root / "sphere").glob("*.png"))[0], frame)
    damaged = damage(frame)
    result = predict(trained_run, damaged)
    assert_one_line_error(result, damaged)


def test_pickled_npy_is_refused_without_running_its_code(trained_run, tmp_path):
    """allow_pickle stays off: loading a pickle would run whatever the file says, here create a marker file."""
    marker = tmp_path / "pickle_ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _RunsOnUnpickle(str(marker))
    damaged = tmp_path / "frame.npy"
    np.save(damaged, payload, allow_pickle=True)
    result = predict(trained_run, damaged)
    assert_one_line_error(result, damaged)
    assert "allow_pickle" in result.output or "Python objects" in result.output  # refused as a pickle
    assert not marker.exists()


class _RunsOnUnpickle:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))
