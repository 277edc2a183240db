"""Benchmark: what decoding gives from perfect maps: the accuracy ceiling of a trained pose head.

Renders the ground-truth heatmaps, part affinity fields and joint depths of the recipe's held-out synthetic frames
(the training targets), decodes them as the SavedModel does, and prints PCK@0.2, mAP@10 cm, MPJPE and OKS AP: with
the fixed per-joint surface offsets and with the joint depths. No training: what is lost here is lost to peak
finding, grouping and lifting, whatever the network learns.

    .venv/bin/python benchmarks/pose_decoding_ceiling.py [--split test] [--set model.pose.output_stride=8]
"""

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf

from pose_tl.backbones.depth_preprocessing import depth_to_metres
from pose_tl.config import load_recipe
from pose_tl.data.augment import resize_depth
from pose_tl.data.people.skeleton import NUM_JOINTS
from pose_tl.data.people.targets import joint_depth_targets, joint_heatmaps, part_affinity_fields
from pose_tl.data.people_sources import people_frames
from pose_tl.decoding.people import decode_people
from pose_tl.evaluation.pose_metrics import evaluate_pose

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "pose_vgg16_depth.yaml"


def ground_truth_maps(frame, input_size, pose):
    """The frame's training targets at the model's input size: (heatmaps, pafs, joint depths, depth metres)."""
    height, width = input_size
    stride = pose.output_stride
    scale = np.array([width / frame.depth_mm.shape[1], height / frame.depth_mm.shape[0]], np.float32)
    joints_2d, visibility = frame.joints_2d * scale, frame.visibility.astype(np.int32)
    output_size = (height // stride, width // stride)
    metres = resize_depth(depth_to_metres(frame.depth_mm[None])[..., None], input_size)[0, ..., 0]
    return (joint_heatmaps(joints_2d, visibility, output_size, stride, pose.sigma),
            part_affinity_fields(joints_2d, visibility, output_size, stride, pose.paf_width),
            joint_depth_targets(joints_2d, frame.joints_3d, visibility, metres, output_size, stride)[..., :NUM_JOINTS],
            metres, scale)


def decode_frame(frame, maps, pose, use_joint_depth):
    heatmaps, pafs, joint_depth, metres, scale = maps
    intrinsics = frame.intrinsics * np.concatenate([scale, scale])
    out = decode_people(heatmaps[None], pafs[None], metres[None], intrinsics[None], stride=pose.output_stride,
                        joint_depth=joint_depth[None] if use_joint_depth else None)
    out = {name: np.asarray(value)[0] for name, value in out.items()}
    out["keypoints_2d"] = out["keypoints_2d"] / scale
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(RECIPE))
    parser.add_argument("--split", default="test")
    parser.add_argument("--set", action="append", default=[], help="recipe override, as `pose-tl train --set`")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.set)
    pose = recipe.model.pose
    frames = people_frames(recipe.data, recipe.seed, args.split)
    maps = [ground_truth_maps(frame, recipe.model.input_size, pose) for frame in frames]
    people = sum(frame.num_people for frame in frames)
    print(f"decoding ground-truth maps of {len(frames)} {args.split} frames ({people} people), input "
          f"{recipe.model.input_size[0]}x{recipe.model.input_size[1]}, output stride {pose.output_stride}, "
          f"sigma {pose.sigma}")
    print(f"{'z from':<34}{'PCK@0.2':>9}{'mAP@10cm':>10}{'MPJPE mm':>10}{'OKS AP':>9}{'people':>9}")
    for label, use_joint_depth in (("surface + fixed offsets", False), ("surface + joint depths", True)):
        predictions = [decode_frame(frame, frame_maps, pose, use_joint_depth)
                       for frame, frame_maps in zip(frames, maps)]
        report = evaluate_pose(predictions, frames)
        found = sum(int(p["num_people"]) for p in predictions)
        print(f"{label:<34}{report['pck@0.2']:>9.3f}{report['map@10cm']:>10.3f}{report['mpjpe_mm']:>10.0f}"
              f"{report['oks_ap']:>9.3f}{found:>9d}")


if __name__ == "__main__":
    tf.config.set_visible_devices([], "GPU")
    main()
