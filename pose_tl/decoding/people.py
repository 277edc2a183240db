"""From the pose head's maps and the depth frame to people with 3D skeletons, for a batch, in TensorFlow ops."""

import tensorflow as tf

from pose_tl.data.people.skeleton import NUM_JOINTS
from pose_tl.decoding.grouping import group_people, sample_at_pixels
from pose_tl.decoding.lifting import JOINT_SURFACE_OFFSETS_M, lift_to_camera_space
from pose_tl.decoding.occlusion import (DEFAULT_BONE_LENGTHS, depth_from_neighbours, infer_missing_joints,
                                        occluded_by_depth)
from pose_tl.decoding.peaks import find_peaks


def decode_people(heatmaps, pafs, depth_m, intrinsics, *, stride, joint_depth=None, peak_threshold=0.2, max_peaks=8,
                  max_people=10, min_joint_score=0.3, surface_offset_m=JOINT_SURFACE_OFFSETS_M,
                  bone_lengths=DEFAULT_BONE_LENGTHS):
    """Decode a batch.

    Args:
        heatmaps: [N, Ho, Wo, J]; pafs: [N, Ho, Wo, 2L] (the pose head's last stage).
        joint_depth: [N, Ho, Wo, J] learned depth of each joint behind the surface, read at its peak; None: the
            fixed `surface_offset_m`.
        depth_m: [N, H, W] metres at the model's input resolution (H = Ho * stride).
        intrinsics: [N, 4] (fx, fy, cx, cy) for that resolution.
        min_joint_score: found joints below this score are replaced by inferred ones.
        surface_offset_m: skin-to-joint depth, a scalar or one value per joint.

    Returns:
        A dict: num_people [N], keypoints_2d [N, P, J, 2] (input pixels), keypoints_3d [N, P, J, 3] (metres,
        camera frame), keypoint_scores [N, P, J], keypoint_inferred [N, P, J] (bool), person_scores [N, P].
    """
    xy, scores = find_peaks(heatmaps, threshold=peak_threshold, max_peaks=max_peaks)

    learned_depth = joint_depth is not None
    if not learned_depth:
        joint_depth = tf.zeros_like(heatmaps[..., :1])  # a placeholder for map_fn; not read

    def one_frame(args):
        frame_xy, frame_scores, frame_pafs, frame_depth, frame_intrinsics, frame_joint_depth = args
        keypoints, keypoint_scores, person_scores, count = group_people(frame_xy, frame_scores, frame_pafs,
                                                                        max_people=max_people)
        keypoints_px = keypoints * float(stride)
        offset = (read_joint_maps(frame_joint_depth, keypoints) if learned_depth
                  else tf.constant(surface_offset_m, tf.float32))
        xyz, has_depth = lift_to_camera_space(keypoints_px, frame_depth, frame_intrinsics, surface_offset_m=offset)
        found = (keypoint_scores >= min_joint_score) & has_depth
        hidden = occluded_by_depth(xyz, found, bone_lengths)  # found in 2D, but depth reads the occluder
        xyz, depth_inferred = depth_from_neighbours(keypoints_px, xyz, found & ~hidden, hidden, frame_intrinsics)
        found = found & ~hidden
        xyz, inferred = infer_missing_joints(xyz, found | depth_inferred, bone_lengths)
        inferred = inferred | depth_inferred
        fx, fy, cx, cy = tf.unstack(frame_intrinsics)
        projected = tf.stack([xyz[..., 0] / tf.maximum(xyz[..., 2], 1e-6) * fx + cx,
                              xyz[..., 1] / tf.maximum(xyz[..., 2], 1e-6) * fy + cy], axis=-1)
        keypoints_px = tf.where((inferred & ~depth_inferred)[..., None], projected, keypoints_px)
        person = tf.range(max_people) < count
        keep = person[:, None] & (found | inferred)
        return (count, tf.where(keep[..., None], keypoints_px, 0.0), tf.where(keep[..., None], xyz, 0.0),
                tf.where(found | depth_inferred, keypoint_scores, 0.0), inferred & person[:, None], person_scores)

    signature = (tf.TensorSpec([], tf.int32), tf.TensorSpec([max_people, NUM_JOINTS, 2], tf.float32),
                 tf.TensorSpec([max_people, NUM_JOINTS, 3], tf.float32),
                 tf.TensorSpec([max_people, NUM_JOINTS], tf.float32),
                 tf.TensorSpec([max_people, NUM_JOINTS], tf.bool), tf.TensorSpec([max_people], tf.float32))
    outputs = tf.map_fn(one_frame, (xy, scores, tf.cast(pafs, tf.float32), tf.cast(depth_m, tf.float32),
                                    tf.cast(intrinsics, tf.float32), tf.cast(joint_depth, tf.float32)),
                        fn_output_signature=signature)
    names = ("num_people", "keypoints_2d", "keypoints_3d", "keypoint_scores", "keypoint_inferred", "person_scores")
    return dict(zip(names, outputs))


def read_joint_maps(maps, keypoints):
    """maps [Ho, Wo, J] read at each person's joint: keypoints [P, J, 2] (x, y output pixels) -> [P, J]."""
    return tf.linalg.diag_part(sample_at_pixels(maps, keypoints))  # [P, J, J]: joint j's pixel, joint j's map
