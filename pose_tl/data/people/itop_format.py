"""ITOP h5 files as distributed (Haque et al., "Towards Viewpoint Invariant 3D Human Pose Estimation", ECCV 2016).

A split is two files:

- `ITOP_<side|top>_<split>_depth_map.h5`: `id` [N] bytes such as b'04_00123' (person_frame), `data` [N, 240, 320]
  float16 metres.
- `ITOP_<side|top>_<split>_labels.h5`: `id`, `is_valid` [N], `visible_joints` [N, 15], `image_coordinates`
  [N, 15, 2] int pixels, `real_world_coordinates` [N, 15, 3] metres, and `segmentation` [N, 240, 320] int8
  (-1 background, 0..14 body part), which is optional here.

One person per frame, joints in the order of `skeleton.JOINT_NAMES`. ITOP's real-world frame is x right, y UP,
z forward; pose_tl's camera frame has y down, so y is negated on reading (x and z are unchanged).
"""

import logging
from pathlib import Path

import h5py
import numpy as np

from pose_tl.data.depth_io import MM_PER_M
from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.skeleton import NUM_JOINTS, OCCLUDED, OUT_OF_FRAME, VISIBLE
from pose_tl.errors import DataError

ITOP_IMAGE_SIZE = (240, 320)  # height, width of every ITOP depth map
# fx, fy, cx, cy in pixels. ITOP's files do not carry them; these are the values commonly used with ITOP (they
# project real_world_coordinates onto image_coordinates). Pass `intrinsics=` to read_itop to override them.
ITOP_INTRINSICS = (285.71, 285.71, 160.0, 120.0)
BOX_PADDING = 0.10  # of the in-frame joints' extent, on each side: joints are body-part centres, the skin lies beyond
CHUNK_FRAMES = 256  # frames read from the h5 files at a time (~40 MB of depth), so a 10k-frame split streams
LABEL_SHAPES = {"is_valid": (), "visible_joints": (NUM_JOINTS,), "image_coordinates": (NUM_JOINTS, 2),
                "real_world_coordinates": (NUM_JOINTS, 3)}

logger = logging.getLogger(__name__)


def read_itop(depth_h5, labels_h5, *, only_valid=True, intrinsics=ITOP_INTRINSICS):
    """Open one ITOP split: check both files now, read frames in chunks of `CHUNK_FRAMES` when iterated.

    Each frame has one person: `pose_classes` -1 (ITOP has no pose classes); visibility 2 where `visible_joints`
    is set, else 1, and 0 where the 2D point lies outside the 320 x 240 image; the box spans the in-frame joints'
    image coordinates, padded by `BOX_PADDING` on each side and clipped to the image; the instance mask is
    `segmentation >= 0` (person 1), or empty without segmentation; depth is rounded to uint16 millimetres.

    Args:
        depth_h5: the `..._depth_map.h5` file.
        labels_h5: the matching `..._labels.h5` file; its `id`s must equal the depth file's, in order.
        only_valid: skip frames with `is_valid == 0` (ITOP marks frames whose labels are unreliable).
        intrinsics: (fx, fy, cx, cy) in pixels; the default `ITOP_INTRINSICS` are not from the files.

    Returns:
        An `ItopFrames`: iterate it (repeatedly) for `PeopleFrame`s; `len()`, `ids` and `skipped` (the count of
        invalid frames left out, also logged at INFO) are known without reading any depth.

    Raises:
        DataError: a file or dataset is missing, or shapes or ids disagree; the message names the file and key.
    """
    intrinsics = np.asarray(intrinsics, np.float32)
    if intrinsics.shape != (4,):
        raise ValueError(f"`intrinsics` must be 4 numbers (fx, fy, cx, cy). Received: {intrinsics.tolist()!r}")
    depth_h5, labels_h5 = Path(depth_h5), Path(labels_h5)
    with _open_h5(depth_h5) as depth_file, _open_h5(labels_h5) as labels_file:
        ids = _ids(depth_h5, depth_file)
        count = len(ids)
        _dataset(depth_h5, depth_file, "data", (count, *ITOP_IMAGE_SIZE))
        label_ids = _ids(labels_h5, labels_file)
        if len(label_ids) != count:
            raise DataError(f"{labels_h5}: dataset 'id' has {len(label_ids)} frames but {depth_h5}: dataset 'id' "
                            f"has {count}")
        different = np.flatnonzero(label_ids != ids)
        if different.size:
            first = different[0]
            raise DataError(f"{labels_h5}: dataset 'id' differs from {depth_h5}: dataset 'id' in {different.size} "
                            f"frame(s), first at index {first} ('{label_ids[first]}' vs '{ids[first]}')")
        for key, shape in LABEL_SHAPES.items():
            _dataset(labels_h5, labels_file, key, (count, *shape))
        has_segmentation = "segmentation" in labels_file
        if has_segmentation:
            _dataset(labels_h5, labels_file, "segmentation", (count, *ITOP_IMAGE_SIZE))
        keep = labels_file["is_valid"][()] != 0 if only_valid else np.ones(count, bool)
    frames = ItopFrames(depth_h5, labels_h5, np.flatnonzero(keep), ids, intrinsics, has_segmentation)
    if frames.skipped:
        logger.info("%s: skipped %d of %d frames with is_valid == 0", labels_h5, frames.skipped, count)
    return frames


class ItopFrames:
    """The frames of one ITOP split (see `read_itop`), read from the h5 files chunk by chunk on each iteration.

    Attributes:
        ids: the ITOP ids ('<person>_<frame>') of the frames yielded, in order.
        skipped: how many frames were left out for `is_valid == 0`.
    """

    def __init__(self, depth_h5, labels_h5, indices, all_ids, intrinsics, has_segmentation):
        self.depth_h5, self.labels_h5 = depth_h5, labels_h5
        self.indices = indices
        self.ids = [str(all_ids[i]) for i in indices]
        self.skipped = len(all_ids) - len(indices)
        self.intrinsics = intrinsics
        self.has_segmentation = has_segmentation

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        with _open_h5(self.depth_h5) as depth_file, _open_h5(self.labels_h5) as labels_file:
            for start in range(0, len(self.indices), CHUNK_FRAMES):
                chunk = self.indices[start:start + CHUNK_FRAMES]
                rows = slice(int(chunk[0]), int(chunk[-1]) + 1)  # one contiguous read, then pick the kept frames
                picked = chunk - chunk[0]
                depth = depth_file["data"][rows][picked]
                labels = {key: labels_file[key][rows][picked] for key in LABEL_SHAPES if key != "is_valid"}
                segmentation = labels_file["segmentation"][rows][picked] if self.has_segmentation else None
                for k in range(len(chunk)):
                    yield _itop_frame(depth[k], labels["visible_joints"][k], labels["image_coordinates"][k],
                                      labels["real_world_coordinates"][k],
                                      None if segmentation is None else segmentation[k], self.intrinsics)


def _itop_frame(depth_m, visible, image_xy, world_xyz, segmentation, intrinsics):
    height, width = depth_m.shape
    depth_mm = np.round(np.nan_to_num(depth_m.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0) * MM_PER_M)
    joints_2d = image_xy.astype(np.float32)
    in_frame = ((joints_2d[:, 0] >= 0) & (joints_2d[:, 0] < width)
                & (joints_2d[:, 1] >= 0) & (joints_2d[:, 1] < height))
    visibility = np.where(in_frame, np.where(visible != 0, VISIBLE, OCCLUDED), OUT_OF_FRAME)
    if segmentation is None:
        instance_mask = np.zeros((height, width), np.uint8)
    else:
        instance_mask = (segmentation >= 0).astype(np.uint8)
    return PeopleFrame(
        depth_mm=np.clip(depth_mm, 0, 65535).astype(np.uint16),
        instance_mask=instance_mask,
        intrinsics=intrinsics.copy(),
        joints_2d=joints_2d[None],
        joints_3d=(world_xyz.astype(np.float32) * np.array([1.0, -1.0, 1.0], np.float32))[None],  # y up -> y down
        visibility=visibility.astype(np.int8)[None],
        boxes=_padded_box(joints_2d[in_frame], height, width)[None],
        pose_classes=np.full(1, -1, np.int32),
    )


def _padded_box(points, height, width):
    """(x, y, width, height) around `points`, padded by BOX_PADDING on each side, clipped; zeros if no points."""
    if len(points) == 0:
        return np.zeros(4, np.float32)
    low, high = points.min(0), points.max(0)
    pad = (high - low) * BOX_PADDING
    low = np.maximum(low - pad, 0.0)
    high = np.minimum(high + pad, (width, height))
    return np.array([*low, *(high - low)], np.float32)


def _open_h5(path):
    if not path.is_file():
        raise DataError(f"{path}: ITOP file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: cannot open as HDF5 ({exc})") from None


def _dataset(path, h5_file, key, shape):
    dataset = h5_file.get(key)
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(f"{path}: dataset '{key}' is missing; found {sorted(h5_file.keys())}")
    if dataset.shape != shape or dataset.dtype.kind not in "biuf":
        raise DataError(f"{path}: dataset '{key}' must be numeric with shape {shape}; "
                        f"found {dataset.dtype} {dataset.shape}")
    return dataset


def _ids(path, h5_file):
    """The `id` dataset as an array of str."""
    dataset = h5_file.get("id")
    if not isinstance(dataset, h5py.Dataset):
        raise DataError(f"{path}: dataset 'id' is missing; found {sorted(h5_file.keys())}")
    if dataset.ndim != 1:
        raise DataError(f"{path}: dataset 'id' must be 1-D [N]; found shape {dataset.shape}")
    return np.array([value.decode() if isinstance(value, bytes) else str(value) for value in dataset[()]], str)
