"""Real people formats: COCO keypoints JSON over 16-bit depth PNGs, and ITOP h5 files, on tiny hand-made files."""

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from pose_tl.data.people import itop_format
from pose_tl.data.people.coco_format import read_coco_dataset, write_coco_dataset
from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.itop_format import ITOP_INTRINSICS, read_itop
from pose_tl.data.people.skeleton import JOINT_NAMES, LIMBS, NUM_JOINTS
from pose_tl.errors import DataError

H, W = 24, 32


def _person_frame(rng, people, intrinsics=(30.0, 30.0, 16.0, 12.0)):
    joints_2d = rng.uniform(0, [W, H], (people, NUM_JOINTS, 2)).astype(np.float32)
    visibility = rng.integers(1, 3, (people, NUM_JOINTS)).astype(np.int8)
    if people:
        joints_2d[0, 3] = (-5.25, 7.5)  # out of frame: COCO zeroes it, keypoints_2d_raw keeps it
        visibility[0, 3] = 0
    mask = np.zeros((H, W), np.uint8)
    for person in range(people):
        mask[2 + 8 * person:8 + 8 * person, 4:12] = person + 1
    return PeopleFrame(
        depth_mm=rng.integers(0, 65536, (H, W)).astype(np.uint16), instance_mask=mask,
        intrinsics=np.asarray(intrinsics, np.float32), joints_2d=joints_2d,
        joints_3d=rng.normal(0, 1, (people, NUM_JOINTS, 3)).astype(np.float32), visibility=visibility,
        boxes=np.array([[4, 2 + 8 * p, 8, 6] for p in range(people)], np.float32).reshape(people, 4),
        pose_classes=np.array([2, -1][:people], np.int32))


@pytest.fixture
def frames():
    rng = np.random.default_rng(0)
    return [_person_frame(rng, 2), _person_frame(rng, 0), _person_frame(rng, 1, intrinsics=(np.nan,) * 4)]


def _assert_same_frames(got, expected):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.depth_mm, b.depth_mm)
        assert a.depth_mm.dtype == np.uint16 and a.instance_mask.dtype == np.uint8
        np.testing.assert_array_equal(a.instance_mask, b.instance_mask)
        np.testing.assert_allclose(a.intrinsics, b.intrinsics, atol=1e-4)
        assert a.joints_2d.shape == b.joints_2d.shape and a.joints_3d.shape == b.joints_3d.shape
        np.testing.assert_allclose(a.joints_2d, b.joints_2d, atol=1e-4)
        np.testing.assert_allclose(a.joints_3d, b.joints_3d, atol=1e-4)
        np.testing.assert_array_equal(a.visibility, b.visibility)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        np.testing.assert_array_equal(a.pose_classes, b.pose_classes)


def test_coco_round_trip_restores_every_field(frames, tmp_path):
    path = write_coco_dataset(frames, tmp_path / "ds")
    assert path == tmp_path / "ds" / "annotations.json"
    _assert_same_frames(read_coco_dataset(tmp_path / "ds"), frames)
    _assert_same_frames(read_coco_dataset(path), frames)
    assert read_coco_dataset(path)[0].joints_2d[0, 3].tolist() == [-5.25, 7.5]  # out-of-frame joint restored


def test_coco_json_has_the_coco_keypoints_layout(frames, tmp_path):
    path = write_coco_dataset(frames, tmp_path, file_prefix="take")
    data = json.loads(path.read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # atomic write left no temp file
    (category,) = data["categories"]
    assert category["id"] == 1 and category["name"] == "person" and category["keypoints"] == list(JOINT_NAMES)
    assert category["skeleton"][0] == [LIMBS[0][0] + 1, LIMBS[0][1] + 1]
    image = data["images"][0]
    assert image["file_name"] == "depth/take_000000.png" and image["mask_file"] == "masks/take_000000.png"
    assert (image["width"], image["height"], image["intrinsics"]) == (W, H, [30.0, 30.0, 16.0, 12.0])
    assert data["images"][2]["intrinsics"] == [None] * 4  # NaN is not JSON
    with Image.open(tmp_path / image["file_name"]) as depth, Image.open(tmp_path / image["mask_file"]) as mask:
        assert depth.mode.startswith("I;16") and mask.mode == "L"
    assert [(a["id"], a["image_id"]) for a in data["annotations"]] == [(1, 1), (2, 1), (3, 3)]
    first = data["annotations"][0]
    keypoints = np.reshape(first["keypoints"], (NUM_JOINTS, 3))
    assert keypoints[3].tolist() == [0, 0, 0]
    np.testing.assert_array_equal(keypoints[:, 2], frames[0].visibility[0])
    assert first["num_keypoints"] == int(np.count_nonzero(frames[0].visibility[0]))
    assert first["keypoints_2d_raw"][6:8] == [-5.25, 7.5]
    assert len(first["keypoints_3d"]) == 3 * NUM_JOINTS
    assert (first["bbox"], first["area"], first["iscrowd"], first["category_id"]) == ([4.0, 2.0, 8.0, 6.0], 48, 0, 1)
    assert (first["pose_class"], data["annotations"][1]["pose_class"]) == ("arms_up", None)


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _minimal_coco(tmp_path, **changes):
    """A plain COCO file without pose_tl's extras; images listed out of id order, image 7 has nobody."""
    _write_png(tmp_path / "img" / "a.png", np.full((H, W), 1500, np.uint16))
    _write_png(tmp_path / "img" / "b.png", np.full((H, W), 2500, np.uint16))
    keypoints = [0, 0, 0] * NUM_JOINTS
    keypoints[:6] = [10.5, 4.0, 2, 11.0, 8.0, 1]
    data = {"images": [{"id": 7, "file_name": "img/b.png", "width": W, "height": H},
                       {"id": 3, "file_name": "img/a.png", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 3, "category_id": 1, "keypoints": keypoints,
                             "num_keypoints": 2, "bbox": [9, 3, 4, 6], "area": 24, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person", "keypoints": list(JOINT_NAMES)}]}
    for dotted, value in changes.items():
        section, index, key = dotted.split("__")
        data[section][int(index)][key] = value
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_reads_plain_coco_without_the_extras(tmp_path):
    first, second = read_coco_dataset(_minimal_coco(tmp_path))
    assert first.depth_mm[0, 0] == 1500 and second.depth_mm[0, 0] == 2500  # image id order: 3, then 7
    assert np.isnan(first.intrinsics).all() and not first.instance_mask.any()
    assert first.visibility[0, :3].tolist() == [2, 1, 0]
    assert first.joints_2d[0, :2].tolist() == [[10.5, 4.0], [11.0, 8.0]]
    assert np.isnan(first.joints_2d[0, 2:]).all() and np.isnan(first.joints_3d).all()
    assert first.boxes.tolist() == [[9, 3, 4, 6]] and first.pose_classes.tolist() == [-1]
    assert second.num_people == 0
    assert (second.joints_2d.shape, second.joints_3d.shape, second.visibility.shape, second.boxes.shape,
            second.pose_classes.shape) == ((0, NUM_JOINTS, 2), (0, NUM_JOINTS, 3), (0, NUM_JOINTS), (0, 4), (0,))


@pytest.mark.parametrize("changes, named", [
    ({"annotations__0__image_id": 99}, "annotation 1"),
    ({"annotations__0__keypoints": [1, 2, 2] * 17}, "annotation 1"),
    ({"annotations__0__keypoints_3d": [0.0] * 44}, "annotation 1"),
    ({"annotations__0__pose_class": "dabbing"}, "annotation 1"),
    ({"images__1__file_name": "img/missing.png"}, "missing.png"),
    ({"images__1__width": W + 1}, "a.png"),
])
def test_coco_bad_annotations_raise_data_error_naming_the_file(tmp_path, changes, named):
    path = _minimal_coco(tmp_path, **changes)
    with pytest.raises(DataError, match=r"person_keypoints\.json") as error:
        read_coco_dataset(path)
    assert named in str(error.value)


def test_coco_missing_or_malformed_json_and_8_bit_depth_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="annotations.json.*not found"):
        read_coco_dataset(tmp_path)
    (tmp_path / "annotations.json").write_text("{not json")
    with pytest.raises(DataError, match="annotations.json.*cannot read"):
        read_coco_dataset(tmp_path)
    path = _minimal_coco(tmp_path)
    _write_png(tmp_path / "img" / "a.png", np.zeros((H, W), np.uint8))
    with pytest.raises(DataError, match=r"a\.png must be a single-channel 16-bit depth PNG"):
        read_coco_dataset(path)


ITOP_IDS = [b"00_00000", b"00_00001", b"00_00002", b"01_00000"]


def _write_itop(folder, *, ids=ITOP_IDS, label_ids=ITOP_IDS, segmentation=True, drop=None, reshape=None):
    """4 frames of 240x320 in ITOP's layout; frame 1 is invalid."""
    rng = np.random.default_rng(1)
    n = len(ids)
    depth = np.full((n, 240, 320), 2.5, np.float16)
    depth[:, 0, 0] = np.float16(1.234)
    depth[:, 0, 1] = np.nan
    image = rng.integers(20, 200, (n, NUM_JOINTS, 2))
    image[0, 0] = (320, 5)  # right of the image: out of frame
    image[0, 1] = (4, -1)   # above it
    visible = np.ones((n, NUM_JOINTS), np.int32)
    visible[0, 2] = 0
    segmentation_map = np.full((n, 240, 320), -1, np.int8)
    segmentation_map[:, 100:140, 150:170] = 3
    labels = {"id": np.array(label_ids[:n]), "is_valid": np.array([1, 0, 1, 1][:n], np.uint8),
              "visible_joints": visible, "image_coordinates": image,
              "real_world_coordinates": rng.normal(0, 1, (n, NUM_JOINTS, 3)).astype(np.float32),
              "segmentation": segmentation_map}
    if not segmentation:
        del labels["segmentation"]
    if drop:
        del labels[drop]
    if reshape:
        labels[reshape] = labels[reshape][..., :-1]
    depth_path, labels_path = folder / "ITOP_side_test_depth_map.h5", folder / "ITOP_side_test_labels.h5"
    with h5py.File(depth_path, "w") as f:
        f["id"], f["data"] = np.array(ids), depth
    with h5py.File(labels_path, "w") as f:
        for key, value in labels.items():
            f[key] = value
    return depth_path, labels_path, labels


def test_itop_reads_valid_frames_with_converted_labels(tmp_path):
    depth_path, labels_path, labels = _write_itop(tmp_path)
    frames = read_itop(depth_path, labels_path)
    assert (len(frames), frames.skipped, frames.ids) == (3, 1, ["00_00000", "00_00002", "01_00000"])
    got = list(frames)
    assert len(got) == 3
    first = got[0]
    assert first.depth_mm.dtype == np.uint16 and first.image_size == (240, 320)
    assert first.depth_mm[0, 0] == round(float(np.float16(1.234)) * 1000) and first.depth_mm[0, 1] == 0
    assert first.depth_mm[5, 5] == 2500
    world = labels["real_world_coordinates"]
    np.testing.assert_allclose(got[1].joints_3d[0], world[2] * [1, -1, 1])  # frame 2: frame 1 was skipped
    np.testing.assert_array_equal(first.joints_2d[0], labels["image_coordinates"][0])
    assert first.visibility.shape == (1, NUM_JOINTS)
    assert first.visibility[0, :4].tolist() == [0, 0, 1, 2]
    assert (got[1].visibility == 2).all()
    assert first.pose_classes.tolist() == [-1]
    np.testing.assert_allclose(first.intrinsics, ITOP_INTRINSICS)
    assert first.instance_mask.sum() == 40 * 20 and first.instance_mask[120, 160] == 1
    in_frame = labels["image_coordinates"][0][2:]
    low, high = in_frame.min(0), in_frame.max(0)
    pad = (high - low) * 0.1
    np.testing.assert_allclose(first.boxes[0], [*(low - pad), *(high - low + 2 * pad)], rtol=1e-5)


def test_itop_options_all_frames_no_segmentation_own_intrinsics_small_chunks(tmp_path, monkeypatch):
    depth_path, labels_path, _ = _write_itop(tmp_path, segmentation=False)
    monkeypatch.setattr(itop_format, "CHUNK_FRAMES", 2)
    frames = read_itop(depth_path, labels_path, only_valid=False, intrinsics=(300, 301, 159.5, 119.5))
    assert (len(frames), frames.skipped) == (4, 0)
    got = list(frames)
    assert len(got) == 4 and not any(f.instance_mask.any() for f in got)
    assert got[1].intrinsics.tolist() == [300, 301, 159.5, 119.5]
    valid_only = list(read_itop(depth_path, labels_path))  # chunks of 2 across the skipped frame
    np.testing.assert_array_equal(valid_only[1].joints_3d, got[2].joints_3d)


@pytest.mark.parametrize("options, named", [
    ({"label_ids": [b"00_00000", b"00_00001", b"00_00009", b"01_00000"]}, "'id'"),
    ({"ids": ITOP_IDS[:3]}, "'id'"),
    ({"drop": "real_world_coordinates"}, "'real_world_coordinates'"),
    ({"reshape": "visible_joints"}, "'visible_joints'"),
    ({"reshape": "segmentation"}, "'segmentation'"),
])
def test_itop_inconsistent_files_raise_data_error_naming_file_and_key(tmp_path, options, named):
    depth_path, labels_path, _ = _write_itop(tmp_path, **options)
    if "ids" in options:  # a labels file one frame longer than the depth file
        with h5py.File(labels_path, "a") as f:
            del f["id"]
            f["id"] = np.array(ITOP_IDS)
    with pytest.raises(DataError, match="ITOP_side_test_labels.h5") as error:
        read_itop(depth_path, labels_path)
    assert named in str(error.value)


def test_itop_missing_or_unreadable_file_raises_data_error(tmp_path):
    depth_path, labels_path, _ = _write_itop(tmp_path)
    with pytest.raises(DataError, match="nowhere_labels.h5.*not found"):
        read_itop(depth_path, tmp_path / "nowhere_labels.h5")
    depth_path.write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="ITOP_side_test_depth_map.h5.*HDF5"):
        read_itop(depth_path, labels_path)
