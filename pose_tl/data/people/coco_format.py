"""COCO-style keypoint annotations over 16-bit depth PNGs: the people format users bring and `pose-tl data convert`
writes (COCO keypoints layout: Lin et al., "Microsoft COCO", ECCV 2014).

A dataset folder::

    annotations.json          COCO keypoints, 15 ITOP joints (`skeleton.JOINT_NAMES`), plus the extras below
    depth/frame_000000.png    16-bit millimetres, 0 = no reading
    masks/frame_000000.png    8-bit instances: k = the image's k-th annotation in id order, 0 = background

Extras beyond COCO, all optional on reading: images carry `intrinsics` [fx, fy, cx, cy] (missing -> NaN) and
`mask_file` (missing -> an empty mask); annotations carry `keypoints_3d` (flat [X, Y, Z] * 15, camera metres, y down;
missing -> NaN), `keypoints_2d_raw` (flat [x, y] * 15, the true pixels that COCO zeroes where v = 0; missing -> NaN
for those joints) and `pose_class` (a name of `skeleton.POSE_CLASSES`; missing or null -> -1). JSON has no NaN, so
non-finite numbers are written as null and read back as NaN.
"""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.skeleton import JOINT_NAMES, LIMBS, NUM_JOINTS, OUT_OF_FRAME, POSE_CLASSES
from pose_tl.errors import DataError, OutputError

ANNOTATION_FILE = "annotations.json"
PERSON_CATEGORY = 1
DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I")  # how Pillow opens a 16-bit greyscale PNG
MASK_MODES = ("L", "P")


def write_coco_dataset(frames, folder, *, file_prefix="frame"):
    """Write `PeopleFrame`s as a COCO keypoints dataset folder (layout in the module docstring).

    Args:
        frames: an iterable of `PeopleFrame`; frame i becomes image id i + 1 and its people annotations in order
            (COCO ids start at 1; pycocotools treats id 0 as "no match").
        folder: the dataset folder, created if needed; files of the same names are replaced.
        file_prefix: depth and mask files are named `<file_prefix>_<index:06d>.png`.

    Returns:
        The path of `annotations.json`, written last and atomically (temp file + `os.replace`).

    Raises:
        OutputError: a file cannot be written.
    """
    folder = Path(folder)
    images, annotations = [], []
    try:
        (folder / "depth").mkdir(parents=True, exist_ok=True)
        (folder / "masks").mkdir(exist_ok=True)
        for index, frame in enumerate(frames):
            name = f"{file_prefix}_{index:06d}.png"
            Image.fromarray(np.asarray(frame.depth_mm, np.uint16)).save(folder / "depth" / name)
            Image.fromarray(np.asarray(frame.instance_mask, np.uint8)).save(folder / "masks" / name)
            height, width = frame.image_size
            images.append({"id": index + 1, "file_name": f"depth/{name}", "width": width, "height": height,
                           "intrinsics": _json_numbers(frame.intrinsics), "mask_file": f"masks/{name}"})
            for person in range(frame.num_people):
                annotations.append(_annotation(frame, person, len(annotations) + 1, index + 1))
        category = {"id": PERSON_CATEGORY, "name": "person", "supercategory": "person",
                    "keypoints": list(JOINT_NAMES), "skeleton": [[a + 1, b + 1] for a, b in LIMBS]}
        path = folder / ANNOTATION_FILE
        _write_json_atomically(path, {"images": images, "annotations": annotations, "categories": [category]})
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the COCO dataset ({exc})") from None
    return path


def read_coco_dataset(folder_or_json, *, image_root=None):
    """Read a COCO keypoints dataset into a list of `PeopleFrame`, one per image in image id order.

    Args:
        folder_or_json: a dataset folder (holding `annotations.json`) or the JSON file itself.
        image_root: the folder that `file_name` and `mask_file` are relative to; default the JSON's folder.

    Raises:
        DataError: a file is missing or malformed; the message names it (and the image or annotation id).
    """
    return list(iter_coco_frames(folder_or_json, image_root=image_root))


def iter_coco_frames(folder_or_json, *, image_root=None):
    """As `read_coco_dataset`, but the JSON is checked now and the PNGs are read one frame at a time."""
    return iter(open_coco_dataset(folder_or_json, image_root=image_root))


def open_coco_dataset(folder_or_json, *, image_root=None):
    """A `CocoFrames`: the JSON is parsed and checked now; `len()` is known and each iteration reads the PNGs."""
    json_path = Path(folder_or_json)
    if json_path.is_dir():
        json_path = json_path / ANNOTATION_FILE
    root = Path(image_root) if image_root is not None else json_path.parent
    images, people = _parse_annotation_file(json_path)
    return CocoFrames(json_path, root, images, people)


class CocoFrames:
    """The frames of one COCO dataset in image id order, read again on every iteration (one PNG pair at a time)."""

    def __init__(self, json_path, root, images, people):
        self.json_path, self.root, self.images, self.people = json_path, root, images, people

    def __len__(self):
        return len(self.images)

    def __iter__(self):
        return (_load_frame(self.json_path, self.root, image, self.people.get(image["id"], []))
                for image in self.images)


def _annotation(frame, person, annotation_id, image_id):
    visibility = [int(v) for v in frame.visibility[person]]
    keypoints = []
    for (x, y), v in zip(_json_numbers(frame.joints_2d[person], 2), visibility):
        keypoints += [x, y, v] if v > OUT_OF_FRAME else [0, 0, 0]
    box = _json_numbers(frame.boxes[person])
    area = int(np.count_nonzero(frame.instance_mask == person + 1)) or (box[2] or 0) * (box[3] or 0)
    pose_class = int(frame.pose_classes[person])
    return {"id": annotation_id, "image_id": image_id, "category_id": PERSON_CATEGORY, "keypoints": keypoints,
            "num_keypoints": sum(v > OUT_OF_FRAME for v in visibility), "bbox": box, "area": area, "iscrowd": 0,
            "keypoints_3d": _json_numbers(frame.joints_3d[person]),
            "keypoints_2d_raw": _json_numbers(frame.joints_2d[person]),
            "pose_class": POSE_CLASSES[pose_class] if 0 <= pose_class < len(POSE_CLASSES) else None}


def _json_numbers(array, group=None):
    """Flat list of shortest-repr float32 numbers (None where non-finite); in tuples of `group` if given."""
    values = [float(str(v)) if np.isfinite(v) else None for v in np.asarray(array, np.float32).ravel()]
    return list(zip(*[iter(values)] * group)) if group else values


def _write_json_atomically(path, data):
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, allow_nan=False)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _parse_annotation_file(json_path):
    """-> (images sorted by id, {image_id: [(annotation_id, person arrays), ...]}), every field checked."""
    if not json_path.is_file():
        raise DataError(f"{json_path}: COCO annotation file not found")
    try:
        with open(json_path, encoding="utf-8") as stream:
            data = json.load(stream)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{json_path}: cannot read COCO JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations", []), list):
        raise DataError(f"{json_path}: expected a COCO object with an `images` list and an `annotations` list")
    for category in data.get("categories", []):
        if isinstance(category, dict) and category.get("id") == PERSON_CATEGORY and "keypoints" in category \
                and list(category["keypoints"]) != list(JOINT_NAMES):
            raise DataError(f"{json_path}: category {PERSON_CATEGORY} must list the 15 ITOP joints "
                            f"{list(JOINT_NAMES)}; received {category['keypoints']!r}")
    images = {}
    for image in data["images"]:
        if not isinstance(image, dict) or not isinstance(image.get("id"), int) \
                or not isinstance(image.get("file_name"), str):
            raise DataError(f"{json_path}: every image needs an integer `id` and a `file_name`; "
                            f"received {_short(image)}")
        if image["id"] in images:
            raise DataError(f"{json_path}: image id {image['id']} appears twice")
        images[image["id"]] = image
    people = {}
    for annotation in data.get("annotations", []):
        person = _parse_annotation(json_path, annotation, images)
        people.setdefault(annotation["image_id"], []).append((annotation["id"], person))
    return [images[key] for key in sorted(images)], people


def _parse_annotation(json_path, annotation, images):
    if not isinstance(annotation, dict) or not isinstance(annotation.get("id"), int):
        raise DataError(f"{json_path}: every annotation needs an integer `id`; received {_short(annotation)}")
    where = f"{json_path}: annotation {annotation['id']}"
    if annotation.get("image_id") not in images:
        raise DataError(f"{where}: image_id {annotation.get('image_id')!r} is not an image of the file")
    if annotation.get("category_id", PERSON_CATEGORY) != PERSON_CATEGORY:
        raise DataError(f"{where}: category_id must be {PERSON_CATEGORY} (person); "
                        f"received {annotation['category_id']!r}")
    keypoints = _numbers(where, annotation, "keypoints", 3)
    if keypoints is None:
        raise DataError(f"{where}: `keypoints` is missing")
    visibility = keypoints[:, 2]
    if not np.isin(visibility, (0, 1, 2)).all():
        raise DataError(f"{where}: keypoint visibility must be 0, 1 or 2; received {visibility.tolist()}")
    joints_2d = _numbers(where, annotation, "keypoints_2d_raw", 2)
    if joints_2d is None:
        joints_2d = np.where(visibility[:, None] > OUT_OF_FRAME, keypoints[:, :2], np.nan)
    joints_3d = _numbers(where, annotation, "keypoints_3d", 3)
    box = _numbers(where, annotation, "bbox", 4, count=1)
    if box is None:
        raise DataError(f"{where}: `bbox` is missing")
    pose_class = annotation.get("pose_class")
    if pose_class is not None and pose_class not in POSE_CLASSES:
        raise DataError(f"{where}: pose_class must be one of {list(POSE_CLASSES)} or null; received {pose_class!r}")
    return {"joints_2d": joints_2d, "visibility": visibility, "box": box[0],
            "joints_3d": np.full((NUM_JOINTS, 3), np.nan) if joints_3d is None else joints_3d,
            "pose_class": -1 if pose_class is None else POSE_CLASSES.index(pose_class)}


def _numbers(where, record, key, width, count=NUM_JOINTS):
    """record[key], a flat list of count * width numbers (null -> NaN), as float64 [count, width]; None if absent."""
    values = record.get(key)
    if values is None:
        return None
    try:
        array = np.asarray(values, np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (count * width,):
        received = f"{array.size} numbers" if array is not None and array.ndim == 1 else _short(values)
        raise DataError(f"{where}: `{key}` must be a flat list of {count * width} numbers; received {received}")
    return array.reshape(count, width)


def _load_frame(json_path, root, image, people):
    where = f"{json_path}: image {image['id']}"
    depth_mm = _read_png(where, root / image["file_name"], DEPTH_MODES, "a single-channel 16-bit depth PNG")
    height, width = depth_mm.shape
    if (image.get("height", height), image.get("width", width)) != (height, width):
        raise DataError(f"{where}: the JSON says {image.get('width')} x {image.get('height')} (width x height) but "
                        f"{root / image['file_name']} is {width} x {height}")
    instance_mask = np.zeros((height, width), np.uint8)
    if image.get("mask_file"):
        instance_mask = _read_png(where, root / image["mask_file"], MASK_MODES, "an 8-bit instance mask PNG")
        if instance_mask.shape != (height, width):
            raise DataError(f"{where}: {root / image['mask_file']} is {instance_mask.shape[::-1]} (width, height); "
                            f"its depth image is {(width, height)}")
    intrinsics = _numbers(where, image, "intrinsics", 4, count=1)
    persons = [person for _, person in sorted(people, key=lambda item: item[0])]

    def stack(key, shape, dtype):
        return np.asarray([person[key] for person in persons], dtype).reshape((len(persons), *shape))

    return PeopleFrame(
        depth_mm=depth_mm.astype(np.uint16), instance_mask=instance_mask.astype(np.uint8),
        intrinsics=(np.full(4, np.nan) if intrinsics is None else intrinsics[0]).astype(np.float32),
        joints_2d=stack("joints_2d", (NUM_JOINTS, 2), np.float32),
        joints_3d=stack("joints_3d", (NUM_JOINTS, 3), np.float32),
        visibility=stack("visibility", (NUM_JOINTS,), np.int8), boxes=stack("box", (4,), np.float32),
        pose_classes=stack("pose_class", (), np.int32))


def _read_png(where, path, modes, expected):
    if not path.is_file():
        raise DataError(f"{where}: {path} not found")
    try:
        with Image.open(path) as image:
            if image.format != "PNG" or image.mode not in modes:
                raise DataError(f"{where}: {path} must be {expected}; found {image.format} mode {image.mode!r}")
            return np.array(image)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"{where}: cannot decode {path} ({exc})") from None


def _short(value, limit=120):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
