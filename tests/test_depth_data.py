"""Depth data: file I/O, class folders and splits, depth-aware augmentation, the tf.data pipeline, shapes source."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from pose_tl.config.schema import AugmentConfig, DataConfig, ShapesConfig  # noqa: E402
from pose_tl.data import shapes  # noqa: E402
from pose_tl.data.augment import (add_depth_noise_and_shift, augment_depth, random_flip,  # noqa: E402
                                  resize_depth)
from pose_tl.data.depth_io import read_depth, write_depth_png  # noqa: E402
from pose_tl.data.folder_dataset import (LabelledFiles, scan_class_folders, split_files,  # noqa: E402
                                         verify_depth_files)
from pose_tl.data.pipeline import make_classification_dataset  # noqa: E402
from pose_tl.data.shapes import SHAPE_CLASSES, render_shape_frame, write_shapes_dataset  # noqa: E402
from pose_tl.data.sources import CACHE_ENV, labelled_files, shapes_root  # noqa: E402
from pose_tl.errors import DataError  # noqa: E402

# Augmentation that changes nothing, so a test can switch on exactly one effect.
NO_AUGMENT = AugmentConfig(crop_scale=(1.0, 1.0), horizontal_flip=False, depth_noise_m=0.0, depth_shift_m=0.0,
                           hole_probability=0.0, max_holes=0, max_hole_fraction=0.0)


def random_depth(height=32, width=40, seed=0, holes=True):
    """float32 metres in the sensor range, with a few 0 (no reading) pixels."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 4.5, (height, width)).astype(np.float32)
    if holes:
        depth[rng.random((height, width)) < 0.1] = 0.0
    return depth


def make_class_folders(root, counts, size=(32, 32)):
    """root/<class>/<i>.png|.npy with `counts[class]` valid depth files, alternating PNG and .npy."""
    root = Path(root)
    for c, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for i in range(count):
            depth = random_depth(*size, seed=100 * c + i)
            if i % 2:
                np.save(root / name / f"{i:03d}.npy", depth)
            else:
                write_depth_png(root / name / f"{i:03d}.png", depth)
    return root


def seed_tensor(a, b=0):
    return tf.constant([a, b], tf.int32)


# --- depth_io -------------------------------------------------------------------------------------------------

def test_png_round_trip_keeps_millimetres(tmp_path):
    depth = random_depth(33, 47)
    write_depth_png(tmp_path / "d.png", depth)
    with Image.open(tmp_path / "d.png") as image:
        assert image.mode.startswith("I;16")
    back = read_depth(tmp_path / "d.png")
    assert back.dtype == np.float32 and back.shape == depth.shape
    assert np.abs(back - depth).max() <= 0.0005 + 1e-6  # rounded to the nearest millimetre
    np.testing.assert_array_equal(back == 0, depth == 0)  # holes stay holes, no valid pixel becomes one
    np.testing.assert_allclose(back * 1000.0, np.round(depth * 1000.0), atol=1e-3)


def test_png_writer_turns_invalid_depth_into_holes_and_clips_far_values(tmp_path):
    depth = np.array([[1.2344, np.nan, -1.0], [np.inf, 70.0, 0.0]], np.float32)
    write_depth_png(tmp_path / "d.png", depth)
    np.testing.assert_allclose(read_depth(tmp_path / "d.png"), [[1.234, 0, 0], [0, 65.535, 0]], atol=1e-6)


def test_npy_in_metres(tmp_path):
    depth = random_depth()
    np.save(tmp_path / "d.npy", depth.astype(np.float64))
    back = read_depth(tmp_path / "d.npy")
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, depth, rtol=1e-6)


def test_npy_in_millimetres(tmp_path):
    mm = np.array([[500, 1234], [0, 4500]], np.uint16)
    np.save(tmp_path / "d.npy", mm)
    np.testing.assert_allclose(read_depth(tmp_path / "d.npy", npy_units="mm"), [[0.5, 1.234], [0.0, 4.5]], rtol=1e-6)
    # The same file read as metres keeps the numbers: units come from the recipe, never guessed.
    np.testing.assert_allclose(read_depth(tmp_path / "d.npy", npy_units="m"), mm.astype(np.float32))


def test_npy_with_trailing_channel_axis_is_accepted(tmp_path):
    depth = random_depth(8, 12)
    np.save(tmp_path / "d.npy", depth[..., None])
    np.testing.assert_array_equal(read_depth(tmp_path / "d.npy"), depth)


def test_npy_non_finite_and_negative_values_become_holes(tmp_path):
    np.save(tmp_path / "d.npy", np.array([[np.nan, np.inf, -np.inf], [-0.5, 0.0, 2.5]], np.float32))
    np.testing.assert_array_equal(read_depth(tmp_path / "d.npy"), [[0, 0, 0], [0, 0, 2.5]])


def _write_8bit_png(path):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path)


def _write_rgb_png(path):
    Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(path)


def _write_truncated_png(path):
    write_depth_png(path, random_depth(32, 32, holes=False))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_header_only_png(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n")


def _write_rgb_npy(path):
    np.save(path, np.ones((8, 8, 3), np.float32))


def _write_1d_npy(path):
    np.save(path, np.ones(8, np.float32))


def _write_text_npy(path):
    path.write_text("not an array")


def _write_bool_npy(path):
    np.save(path, np.ones((8, 8), bool))


def _write_jpg(path):
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(path)


@pytest.mark.parametrize("name, write, fragment", [
    ("eight_bit.png", _write_8bit_png, "found mode 'L'"),
    ("rgb.png", _write_rgb_png, "found mode 'RGB'"),
    ("truncated.png", _write_truncated_png, "cannot decode PNG"),
    ("header_only.png", _write_header_only_png, "cannot decode PNG"),
    ("rgb.npy", _write_rgb_npy, "expected a numeric 2-D depth array"),
    ("line.npy", _write_1d_npy, "expected a numeric 2-D depth array"),
    ("bool.npy", _write_bool_npy, "expected a numeric 2-D depth array"),
    ("text.npy", _write_text_npy, "cannot read .npy depth"),
    ("missing.png", None, "depth file not found"),
    ("frame.jpg", _write_jpg, "unsupported depth file type"),
])
def test_unreadable_depth_file_raises_data_error_naming_it(tmp_path, name, write, fragment):
    path = tmp_path / name
    if write is not None:
        write(path)
    with pytest.raises(DataError) as info:
        read_depth(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message, message


# --- class folders, splits, verification ----------------------------------------------------------------------

def test_scan_class_folders_sorts_classes_and_labels_files(tmp_path):
    root = make_class_folders(tmp_path / "data", {"zeta": 2, "alpha": 3, "mid": 1})
    (root / ".hidden").mkdir()
    (root / "alpha" / "notes.txt").write_text("not depth")
    files = scan_class_folders(root)
    assert files.class_names == ["alpha", "mid", "zeta"]
    assert len(files.paths) == 6
    assert all(not p.endswith(".txt") for p in files.paths)
    assert [files.class_names[label] for label in files.labels] == [Path(p).parent.name for p in files.paths]


def test_scan_class_folders_keeps_the_order_of_expected_classes(tmp_path):
    root = make_class_folders(tmp_path / "data", {"cat": 1, "dog": 2})
    files = scan_class_folders(root, expected_classes=["dog", "cat"])
    assert files.class_names == ["dog", "cat"]
    assert [files.class_names[label] for label in files.labels] == [Path(p).parent.name for p in files.paths]


def test_scan_class_folders_rejects_classes_that_disagree_with_the_recipe(tmp_path):
    root = make_class_folders(tmp_path / "data", {"cat": 1, "dog": 1})
    with pytest.raises(DataError, match=r"data\.classes \['cat', 'bird'\] disagree .* \['cat', 'dog'\]") as info:
        scan_class_folders(root, expected_classes=["cat", "bird"])
    assert str(root) in str(info.value)


def test_scan_class_folders_rejects_an_empty_class_folder(tmp_path):
    root = make_class_folders(tmp_path / "data", {"cat": 2, "dog": 2})
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("no depth here")
    with pytest.raises(DataError, match="holds no depth files") as info:
        scan_class_folders(root)
    assert str(info.value).startswith(str(root / "empty"))


@pytest.mark.parametrize("counts", [{"only": 3}, {}])
def test_scan_class_folders_needs_two_classes(tmp_path, counts):
    root = make_class_folders(tmp_path / "data", counts)
    root.mkdir(exist_ok=True)
    with pytest.raises(DataError, match="expected at least 2 class folders") as info:
        scan_class_folders(root)
    assert str(root) in str(info.value)


def test_scan_class_folders_rejects_a_missing_root(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found") as info:
        scan_class_folders(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def fake_files(counts):
    paths, labels = [], []
    for label, count in enumerate(counts):
        paths += [f"c{label}/{i:03d}.png" for i in range(count)]
        labels += [label] * count
    return LabelledFiles(paths, labels, [f"c{label}" for label in range(len(counts))])


def test_split_is_stratified_disjoint_and_complete():
    files = fake_files([10, 5, 20])
    train, val = split_files(files, 0.2, seed=1)
    assert sorted(val.labels) == [0, 0, 1, 2, 2, 2, 2]  # 20 % of each class, at least one
    assert set(train.paths).isdisjoint(val.paths)
    assert sorted(train.paths + val.paths) == sorted(files.paths)
    lookup = dict(zip(files.paths, files.labels))
    for part in (train, val):
        assert part.class_names == files.class_names
        assert [lookup[p] for p in part.paths] == part.labels


def test_split_is_deterministic_for_a_seed_and_varies_with_it():
    files = fake_files([10, 5, 20])
    assert split_files(files, 0.2, seed=3) == split_files(files, 0.2, seed=3)
    assert split_files(files, 0.2, seed=3)[1].paths != split_files(files, 0.2, seed=4)[1].paths


def test_split_without_validation_keeps_everything_for_training():
    files = fake_files([3, 4])
    train, val = split_files(files, 0.0, seed=0)
    assert sorted(train.paths) == sorted(files.paths)
    assert val.paths == [] and val.labels == []


def test_split_rejects_a_class_too_small_to_train_and_validate():
    with pytest.raises(DataError, match="'c1' has 1 files"):
        split_files(fake_files([5, 1]), 0.2, seed=0)


def test_verify_depth_files_names_an_all_zero_frame(tmp_path):
    good = tmp_path / "good.png"
    write_depth_png(good, random_depth())
    blank = tmp_path / "blank.npy"
    np.save(blank, np.full((8, 8), np.nan, np.float32))  # NaN reads as 0: no valid pixel
    verify_depth_files([str(good)], "m")
    with pytest.raises(DataError, match="holds no valid pixel") as info:
        verify_depth_files([str(good), str(blank)], "m")
    assert str(info.value).startswith(str(blank))


def test_verify_depth_files_names_a_corrupt_file(tmp_path):
    bad = tmp_path / "bad.png"
    _write_truncated_png(bad)
    with pytest.raises(DataError) as info:
        verify_depth_files([str(bad)], "m")
    assert str(info.value).startswith(str(bad))


# --- augmentation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("input_size", [(32, 32), (64, 32)])
def test_augment_output_has_input_size_and_no_negative_depth(input_size):
    depth = tf.constant(random_depth(40, 56)[..., None])
    for s in range(4):
        out = augment_depth(depth, AugmentConfig(), input_size, seed_tensor(s))
        assert out.shape == (*input_size, 1)
        assert out.dtype == tf.float32
        assert np.all(out.numpy() >= 0.0)


def test_augment_holes_are_exactly_zero():
    augment = AugmentConfig(crop_scale=(1.0, 1.0), horizontal_flip=False, depth_noise_m=0.0, depth_shift_m=0.0,
                            hole_probability=1.0, max_holes=4, max_hole_fraction=0.3)
    depth = tf.fill([32, 32, 1], 2.0)
    for s in range(5):
        out = augment_depth(depth, augment, (32, 32), seed_tensor(s)).numpy()
        assert set(np.unique(out)) <= {0.0, 2.0}
        assert np.count_nonzero(out == 0.0) > 0  # probability 1: at least one hole
        assert np.count_nonzero(out == 2.0) > 0  # holes cover at most 4 x 30 % x 30 %


def test_augment_with_nothing_enabled_is_identity():
    depth = random_depth(32, 32)[..., None]
    out = augment_depth(tf.constant(depth), NO_AUGMENT, (32, 32), seed_tensor(7))
    np.testing.assert_array_equal(out.numpy(), depth)


def test_noise_and_shift_never_turn_a_hole_into_a_reading():
    augment = AugmentConfig(crop_scale=(1.0, 1.0), horizontal_flip=False, depth_noise_m=0.05, depth_shift_m=1.0,
                            hole_probability=0.0)
    depth = random_depth(32, 32, holes=True)[..., None]
    holes = depth == 0.0
    assert holes.any()
    changed = False
    for s in range(5):
        out = augment_depth(tf.constant(depth), augment, (32, 32), seed_tensor(s)).numpy()
        assert np.all(out[holes] == 0.0)
        assert np.all(out >= 0.0)
        changed |= not np.allclose(out[~holes], depth[~holes])
    assert changed  # noise and shift did act on valid pixels


def test_shift_that_pushes_depth_behind_the_camera_makes_holes_not_negative_depth():
    depth = tf.constant([[[0.1], [0.0]], [[3.0], [0.2]]])
    for s in range(10):
        out = add_depth_noise_and_shift(depth, 0.0, 5.0, seed_tensor(s)).numpy()
        assert out[0, 1, 0] == 0.0
        assert np.all(out >= 0.0)


def test_random_flip_either_keeps_or_reverses_columns():
    depth = random_depth(8, 12)[..., None]
    outcomes = set()
    for s in range(20):
        out = random_flip(tf.constant(depth), seed_tensor(s)).numpy()
        if np.array_equal(out, depth[:, ::-1]):
            outcomes.add("flipped")
        else:
            np.testing.assert_array_equal(out, depth)
            outcomes.add("kept")
    assert outcomes == {"flipped", "kept"}


@pytest.mark.parametrize("size", [(48, 64), (8, 10), (20, 31)])
def test_resize_depth_is_nearest_neighbour(size):
    depth = np.arange(20 * 30, dtype=np.float32).reshape(20, 30, 1) / 100.0
    depth[5:9, 7:12] = 0.0  # a hole must not blend into its neighbours
    out = resize_depth(tf.constant(depth), size).numpy()
    assert out.shape == (*size, 1)
    assert set(np.unique(out)) <= set(np.unique(depth))


# --- tf.data pipeline -----------------------------------------------------------------------------------------

@pytest.fixture
def class_files(tmp_path):
    """2 classes x 3 files (PNG and .npy), 32x32, plus one 40x48 frame to exercise resizing."""
    root = make_class_folders(tmp_path / "data", {"a": 3, "b": 3})
    write_depth_png(root / "b" / "big.png", random_depth(40, 48, seed=9))
    return scan_class_folders(root)


def _arrays(dataset):
    frames, labels = [], []
    for depth, targets in dataset:
        frames.append(depth.numpy())
        labels.append(targets["probabilities"].numpy())
    return frames, labels


def test_validation_pipeline_yields_resized_frames_in_file_order(class_files):
    config = DataConfig(source="shapes", batch_size=4)
    dataset = make_classification_dataset(class_files, config, input_size=(32, 32), training=False, seed=0)
    assert dataset.options().autotune.enabled is False  # no tuning thread to wait for at teardown (`prefetching`)
    frames, labels = _arrays(dataset)
    assert [f.shape for f in frames] == [(4, 32, 32, 1), (3, 32, 32, 1)]
    assert all(f.dtype == np.float32 for f in frames)
    assert all(lab.dtype == np.int32 for lab in labels)
    np.testing.assert_array_equal(np.concatenate(labels), class_files.labels)
    stacked = np.concatenate(frames)
    for i, path in enumerate(class_files.paths):
        expected = resize_depth(tf.constant(read_depth(path)[..., None]), (32, 32)).numpy()
        np.testing.assert_allclose(stacked[i], expected, atol=1e-6, err_msg=path)


def test_training_pipeline_is_repeatable_for_a_seed(class_files):
    config = DataConfig(source="shapes", batch_size=3, augment=AugmentConfig(hole_probability=1.0))

    def run(seed):
        return _arrays(make_classification_dataset(class_files, config, input_size=(32, 32), training=True, seed=seed))

    frames, labels = run(5)
    assert [f.shape for f in frames] == [(3, 32, 32, 1)] * 2 + [(1, 32, 32, 1)]
    assert sorted(np.concatenate(labels).tolist()) == sorted(class_files.labels)
    again_frames, again_labels = run(5)
    for a, b in zip(frames + labels, again_frames + again_labels):
        np.testing.assert_array_equal(a, b)
    other_frames, _ = run(6)
    assert not all(np.array_equal(a, b) for a, b in zip(frames, other_frames))


def test_training_pipeline_with_augmentation_disabled_only_shuffles(class_files):
    config = DataConfig(source="shapes", batch_size=8, augment=AugmentConfig(enabled=False))
    dataset = make_classification_dataset(class_files, config, input_size=(32, 32), training=True, seed=2)
    (frames,), (labels,) = _arrays(dataset)
    reference = make_classification_dataset(class_files, config, input_size=(32, 32), training=False, seed=2)
    (ordered,), (ordered_labels,) = _arrays(reference)
    # Same frames, same labels, possibly another order: each training frame equals one validation frame.
    for frame, label in zip(frames, labels):
        matches = [j for j in range(len(ordered)) if np.array_equal(frame, ordered[j])]
        assert matches and all(ordered_labels[j] == label for j in matches)


# --- the built-in shapes source -------------------------------------------------------------------------------

def test_render_shape_frame_is_deterministic_for_a_seeded_rng():
    a = render_shape_frame("cone", np.random.default_rng(4), 24, 32)
    b = render_shape_frame("cone", np.random.default_rng(4), 24, 32)
    c = render_shape_frame("cone", np.random.default_rng(5), 24, 32)
    assert a.shape == (24, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", SHAPE_CLASSES)
def test_rendered_object_is_nearer_than_the_room_behind_it(kind, monkeypatch):
    frame = render_shape_frame(kind, np.random.default_rng(11), 24, 32, clean=True)
    assert np.all(frame > 0.0) and np.all(frame <= shapes.MAX_RANGE_M)
    # The same scene without the object: an SDF that is never hit, with the same random draws.
    monkeypatch.setattr(shapes, "_sdf", lambda kind, p, size: np.full(p.shape[:-1], 100.0))
    room = render_shape_frame(kind, np.random.default_rng(11), 24, 32, clean=True)
    on_object = frame != room
    assert on_object.mean() > 0.02, "the object covers almost no pixel"
    assert np.all(frame[on_object] < room[on_object])
    assert np.median(frame[on_object]) < room[0].min()  # nearer than the wall seen in the top row


def test_noisy_render_has_holes_but_mostly_positive_depth():
    frame = render_shape_frame("sphere", np.random.default_rng(0), 48, 64)
    assert np.all(frame >= 0.0) and np.all(np.isfinite(frame))
    assert 0.0 < np.mean(frame == 0.0) < 0.2
    np.testing.assert_allclose(frame * 1000.0, np.round(frame * 1000.0), atol=1e-2)  # millimetre quantised


def test_write_shapes_dataset_writes_class_folders_of_depth_pngs(tmp_path):
    root = write_shapes_dataset(tmp_path / "shapes", samples_per_class=2, image_size=(24, 32), seed=0)
    assert root == tmp_path / "shapes"
    assert (root / ".complete").is_file()
    files = scan_class_folders(root)
    assert files.class_names == sorted(SHAPE_CLASSES)
    assert files.labels == [0, 0, 1, 1, 2, 2, 3, 3]
    for path in files.paths:
        depth = read_depth(path)
        assert depth.shape == (24, 32)
        assert np.mean(depth > 0) > 0.5  # at 24x32 the 8 cm edge rule also punches holes in the floor


def test_write_shapes_dataset_is_skipped_when_marked_complete(tmp_path):
    root = write_shapes_dataset(tmp_path / "shapes", samples_per_class=2, image_size=(24, 32), seed=0)
    first = root / "box" / "00000.png"
    before = first.read_bytes()
    write_shapes_dataset(root, samples_per_class=3, image_size=(24, 32), seed=1)
    assert sorted(p.name for p in (root / "box").iterdir()) == ["00000.png", "00001.png"]
    assert first.read_bytes() == before

    marked = tmp_path / "marked"
    marked.mkdir()
    (marked / ".complete").write_text("done\n")
    write_shapes_dataset(marked, samples_per_class=2, image_size=(24, 32), seed=0)
    assert sorted(p.name for p in marked.iterdir()) == [".complete"]


def test_write_shapes_dataset_without_marker_resumes_an_interrupted_write(tmp_path):
    root = tmp_path / "shapes"
    (root / "box").mkdir(parents=True)
    (root / "box" / "00000.png").write_bytes(b"half written")
    write_shapes_dataset(root, samples_per_class=2, image_size=(24, 32), seed=0)
    assert read_depth(root / "box" / "00000.png").shape == (24, 32)


def test_labelled_files_for_shapes_writes_into_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    config = DataConfig(source="shapes", shapes=ShapesConfig(samples_per_class=2, image_size=(24, 32)))
    files = labelled_files(config, seed=3)
    root = shapes_root(config, 3)
    assert root.parent == tmp_path / "cache"
    assert "2x24x32" in root.name and "seed3" in root.name
    assert (root / ".complete").is_file()
    assert files.class_names == list(SHAPE_CLASSES)
    assert len(files.paths) == 2 * len(SHAPE_CLASSES)
    assert all(Path(p).parent.parent == root for p in files.paths)


def test_labelled_files_for_shapes_with_a_root_writes_there(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    config = DataConfig(source="shapes", root=str(tmp_path / "mine"),
                        shapes=ShapesConfig(samples_per_class=2, image_size=(24, 32)))
    files = labelled_files(config, seed=0)
    assert all(Path(p).parent.parent == tmp_path / "mine" for p in files.paths)
    assert not (tmp_path / "cache").exists()


def test_labelled_files_for_a_folder_source_scans_the_root(tmp_path):
    root = make_class_folders(tmp_path / "data", {"sit": 2, "stand": 2})
    files = labelled_files(DataConfig(source="folder", root=str(root), classes=["stand", "sit"]), seed=0)
    assert files.class_names == ["stand", "sit"]
    assert len(files.paths) == 4
