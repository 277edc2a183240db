"""Benchmark: where the joint refiner's 3D errors come from, on the held-out synthetic people.

Cuts each test person's depth crop as decoding does (`pose_tl.decoding.refining`), around its labelled visible
joints and again around shaken ones (`pose_tl.training.facing.shaken`: as decoded joints differ from labels), runs a
trained joint refiner on them, lifts its joints as decoding does (the depth read at the refined joint plus the
refiner's joint depth, or where that surface lies nearer than the crop shows, the trunk's depth plus the refiner's
depth behind the trunk: `refining.behind_occluder`) and splits each labelled joint's error into: 2D (within 0.1 of
the crop box's height, the refiner's validation measure), lateral (x and y at the labelled depth, within 10 cm),
depth (within 10 cm), 3D within 10 cm (mAP@10 cm's test) and 3D with the labelled 2D joint instead of the refined
one (what the joint depths alone lose), for all, visible and occluded joints. No pose network: what is lost here
is the refiner's, whatever the bottom-up head finds.

    .venv/bin/python benchmarks/refiner_errors.py --refiner RUN/checkpoints/refiner.keras
    .venv/bin/python benchmarks/refiner_errors.py --epochs 6    # trains one here first, with the library's settings
    .venv/bin/python benchmarks/refiner_errors.py --epochs 20 --filters 16 --save /tmp/refiner16.keras

RUN: a `benchmarks/pose_accuracy.py` run's folder (`--out`), e.g. runs/bench/hed-bsds500; use the same
`--train-frames` and `--test-frames` as that run, so the test people are the ones it was measured on.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from pose_tl.config import load_recipe

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "pose_vgg16_depth.yaml"
WITHIN_M = 0.1  # mAP@10 cm's radius
WITHIN_BOX = 0.1  # the refiner's validation measure: of the crop box's height
SHAKE_SEED = 123


def test_people_crops(frames, rng):
    """Per test frame with people the refiner would see (`MIN_VISIBLE_JOINTS` visible): (frame, kept [P] bool,
    crops [M, h, w, 1], boxes [M, 4], the crops' trunk depths [M]); cut around the labelled visible joints, or shaken
    ones with a NumPy `rng`."""
    from pose_tl.data.people.skeleton import VISIBLE
    from pose_tl.decoding.facing import person_boxes, trunk_depth
    from pose_tl.decoding.refining import refiner_crops
    from pose_tl.training.facing import MIN_VISIBLE_JOINTS, shaken

    for frame in frames:
        keypoints = np.nan_to_num(frame.joints_2d.astype(np.float32))[None]
        visible = (frame.visibility == VISIBLE)[None]
        kept = visible[0].sum(-1) >= MIN_VISIBLE_JOINTS
        if not kept.any():
            continue
        cut_at, cut_found = shaken(keypoints, visible, rng) if rng is not None else (keypoints, visible)
        depth_m = (frame.depth_mm.astype(np.float32) / 1000.0)[None]
        crops = refiner_crops(depth_m, cut_at, cut_found).numpy()[0][kept]
        boxes = person_boxes(cut_at, cut_found).numpy()[0][kept]
        yield frame, kept, crops, boxes, trunk_depth(depth_m, cut_at, cut_found).numpy()[0][kept]


def refined_joints(refiner, crops, boxes):
    """(joints [M, J, 2] frame pixels, joint depths [M, J] metres behind the surface, behind the trunk [M, J] or None)
    the refiner answers."""
    from pose_tl.decoding.refining import crop_joints, refiner_maps

    maps = refiner_maps(refiner.predict(crops, batch_size=256, verbose=0))
    joints, _, depths, trunk_depths = crop_joints(maps, boxes)  # twins turned to its facing answer, as decoding does
    if depths is None:
        raise SystemExit("this refiner answers no joint depths (model.pose.refiner_depth: false): nothing to lift")
    return joints.numpy(), depths.numpy(), None if trunk_depths is None else trunk_depths.numpy()


def joint_errors(frame, kept, boxes, reference, joints, depths, trunk_depths):
    """Rows [K, 7] of the frame's labelled joints (visibility hidden or visible, with 3D labels): visible (0/1),
    2D error / box height, lateral, depth and 3D errors (metres), 3D error with the labelled 2D joint, joint index."""
    from pose_tl.data.people.skeleton import OCCLUDED, VISIBLE
    from pose_tl.decoding.lifting import depth_at_keypoints
    from pose_tl.decoding.refining import behind_occluder

    depth_m = frame.depth_mm.astype(np.float32) / 1000.0
    fx, fy, cx, cy = (float(value) for value in frame.intrinsics)
    labels_2d, labels_3d, visibility = frame.joints_2d[kept], frame.joints_3d[kept], frame.visibility[kept]

    def lifted(pixels):
        surface = depth_at_keypoints(depth_m, np.nan_to_num(pixels).astype(np.float32)).numpy()
        z = np.where(surface > 0, surface + depths, np.nan)  # no reading: no depth, an error beyond any radius
        if trunk_depths is not None:
            z = np.where(np.asarray(behind_occluder(surface, reference[:, None])), reference[:, None] + trunk_depths, z)
        return np.stack([(pixels[..., 0] - cx) * z / fx, (pixels[..., 1] - cy) * z / fy, z], axis=-1)

    xyz, xyz_at_labels = lifted(joints), lifted(labels_2d)
    at_label_depth = np.stack([(joints[..., 0] - cx) * labels_3d[..., 2] / fx,
                               (joints[..., 1] - cy) * labels_3d[..., 2] / fy], axis=-1)
    box_height = (boxes[:, 2] - boxes[:, 0])[:, None]
    columns = (visibility == VISIBLE,
               np.linalg.norm(joints - labels_2d, axis=-1) / box_height,
               np.linalg.norm(at_label_depth - labels_3d[..., :2], axis=-1),
               np.abs(xyz[..., 2] - labels_3d[..., 2]),
               np.linalg.norm(xyz - labels_3d, axis=-1),
               np.linalg.norm(xyz_at_labels - labels_3d, axis=-1),
               np.broadcast_to(np.arange(visibility.shape[1]), visibility.shape))
    labelled = (visibility >= OCCLUDED) & np.isfinite(labels_3d).all(-1) & np.isfinite(labels_2d).all(-1)
    return np.stack([np.asarray(column, np.float64)[labelled] for column in columns], axis=-1)


def summary(rows):
    """{name: value} of the rows' shares within the radii and median errors (NaN errors count as beyond)."""
    errors = np.nan_to_num(rows[:, 1:6], nan=np.inf)
    return {"joints": len(rows), "2D@0.1": np.mean(errors[:, 0] <= WITHIN_BOX),
            "xy@10cm": np.mean(errors[:, 1] <= WITHIN_M), "z@10cm": np.mean(errors[:, 2] <= WITHIN_M),
            "3D@10cm": np.mean(errors[:, 3] <= WITHIN_M), "lab2D 3D@10": np.mean(errors[:, 4] <= WITHIN_M),
            "xy cm": np.median(errors[:, 1]) * 100, "z cm": np.median(errors[:, 2]) * 100}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refiner", type=Path, default=None, help="a trained refiner.keras (default: train one)")
    parser.add_argument("--epochs", type=int, default=6, help="without --refiner: its training epochs")
    parser.add_argument("--filters", type=int, default=None,
                        help="without --refiner: its width (default: the library's, `refiner.BASE_FILTERS`)")
    parser.add_argument("--save", type=Path, default=None, help="without --refiner: save the one trained here")
    parser.add_argument("--train-frames", type=int, default=2500)
    parser.add_argument("--test-frames", type=int, default=300)
    args = parser.parse_args()

    from pose_tl.data.people_sources import people_frames
    from pose_tl.export.loading import load_keras_model

    recipe = load_recipe(RECIPE, [f"data.synthetic.train_frames={args.train_frames}",
                                  f"data.synthetic.test_frames={args.test_frames}"])
    if args.refiner is not None:
        refiner, source = load_keras_model(args.refiner), str(args.refiner)
    else:
        import keras

        from pose_tl.training.precision import dtype_policy, resolve_precision
        from pose_tl.training.refiner import train_joint_refiner

        start = time.perf_counter()
        with dtype_policy(resolve_precision(recipe.train.precision)):  # as `pose-tl train` trains it
            refiner, _ = train_joint_refiner(people_frames(recipe.data, recipe.seed, "train"),
                                             people_frames(recipe.data, recipe.seed, "validation"),
                                             epochs=args.epochs, seed=recipe.seed, base_filters=args.filters)
            policy = keras.mixed_precision.global_policy().name
        source = (f"trained here, {args.epochs} epochs, {args.filters or 'default'} filters, "
                  f"{time.perf_counter() - start:.0f} s, {policy}")
        if args.save is not None:
            refiner.save(str(args.save))
    test = list(people_frames(recipe.data, recipe.seed, "test"))
    print(f"\njoint refiner errors on the synthetic test split ({args.test_frames} frames, seed {recipe.seed}); "
          f"refiner: {source}")
    names = list(summary(np.zeros((1, 7))))
    print(f"{'crops':<8}{'joints':<10}" + "".join(f"{name:>12}" for name in names))
    for crops_name, rng in (("labels", None), ("shaken", np.random.default_rng(SHAKE_SEED))):
        rows = np.concatenate([joint_errors(frame, kept, boxes, reference, *refined_joints(refiner, crops, boxes))
                               for frame, kept, crops, boxes, reference in test_people_crops(test, rng)])
        for joints_name, chosen in (("all", slice(None)), ("visible", rows[:, 0] == 1), ("hidden", rows[:, 0] == 0)):
            values = summary(rows[chosen])
            print(f"{crops_name:<8}{joints_name:<10}" + "".join(
                f"{values[name]:>12}" if name == "joints" else f"{values[name]:>12.3f}" for name in names))
    print("(2D@0.1: within 0.1 of the crop box's height; xy: x, y at the labelled depth; z: depth; 3D@10cm: "
          "mAP@10 cm's test; lab2D: lifted at the labelled 2D joint with the refiner's joint depth; cm: medians)")


if __name__ == "__main__":
    main()
