"""From the pose head's maps and the depth frame to people with 3D skeletons, for a batch, in TensorFlow ops.

The whole batch is decoded at once (no per-frame loop): see `grouping`.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import NUM_JOINTS
from pose_tl.decoding.facing import (could_turn, exchanged, facing_probabilities, on_person_slots, person_crops,
                                     twin_turns)
from pose_tl.decoding.grouping import group_people
from pose_tl.decoding.indexing import batch_index_like, pixel_indices, take
from pose_tl.decoding.lifting import JOINT_SURFACE_OFFSETS_M, at_depth, lift_to_camera_space, per_frame_intrinsics
from pose_tl.decoding.occlusion import (DEFAULT_BONE_LENGTHS, depth_from_neighbours, infer_missing_joints,
                                        occluded_by_depth)
from pose_tl.decoding.peaks import find_peaks
from pose_tl.decoding.refining import (REFINE_PASSES, RefinedDepths, answers_facing, present_slots, refine_people,
                                      refiner_crops, refiner_heatmaps)

MIN_INFERRED_DEPTH_M = 0.1  # inferred joints nearer than this (or behind the camera) are left out


def decode_people(heatmaps, pafs, depth_m, intrinsics, *, stride, joint_depth=None, peak_threshold=0.2, max_peaks=8,
                  max_people=10, min_joint_score=0.3, surface_offset_m=JOINT_SURFACE_OFFSETS_M,
                  bone_lengths=DEFAULT_BONE_LENGTHS, facing_classifier=None, joint_refiner=None,
                  refine_passes=REFINE_PASSES, refiner_flip=False, loop=False):
    """Decode a batch.

    Args:
        heatmaps: [N, Ho, Wo, J]; pafs: [N, Ho, Wo, 2L] (the pose head's last stage).
        joint_depth: [N, Ho, Wo, J] learned depth of each joint behind the surface, read at its peak; None: the
            fixed `surface_offset_m`.
        depth_m: [N, H, W] metres at the model's input resolution (H = Ho * stride).
        intrinsics: [N, 4] (fx, fy, cx, cy) for that resolution.
        min_joint_score: found joints below this score are replaced by inferred ones.
        surface_offset_m: skin-to-joint depth, a scalar or one value per joint.
        facing_classifier: crops [M, h, w, 1] -> [M, 1] probability that each person faces the camera
            (`pose_tl.models.facing`): arms and legs whose left and right disagree with it are exchanged
            (`pose_tl.decoding.facing`). None: skeletons as grouped.
        joint_refiner: crops [M, h, w, 1] -> [M, h / 2, w / 2, J] heatmaps, or a dict with joint depths too
            (`pose_tl.models.refiner`): each person's joints are found again in its crop
            (`pose_tl.decoding.refining`), and their depths behind the surface where it answers them. None: joints as
            grouped.
        refine_passes: the refiner's passes, each cutting the crops around the joints the last found.
        refiner_flip: average the refiner's heatmaps with those of the mirrored crops (the flip test's).
        loop: assemble people and infer missing joints in loops over the limbs, not unrolled (for XLA, whose
            compile time grows with the graph: `grouping.group_people`).

    Returns:
        A dict: num_people [N], keypoints_2d [N, P, J, 2] (input pixels), keypoints_3d [N, P, J, 3] (metres,
        camera frame), keypoint_scores [N, P, J], keypoint_inferred [N, P, J] (bool), person_scores [N, P].
    """
    assembled = people = assemble_people(heatmaps, pafs, peak_threshold=peak_threshold, max_peaks=max_peaks,
                                         max_people=max_people, loop=loop)
    refined_depths, refiner_turned = None, False
    if joint_refiner is not None:
        present = present_people(people)
        for refine_pass in range(refine_passes):
            crops = refining_crops(depth_m, people, stride=stride, min_joint_score=min_joint_score)
            maps = on_person_slots(lambda c: refiner_heatmaps(joint_refiner, c, refiner_flip), crops, present)
            last = refine_pass == refine_passes - 1  # only the last pass's depths are lifted: read the frame once
            people, refined_depths = refine_people(people, maps, stride=stride, depth_m=depth_m if last else None,
                                                   min_joint_score=min_joint_score)
        refiner_turned = answers_facing(maps)  # it turned the pairs itself (`refining.crop_peaks`)
    probability = None
    if facing_classifier is not None and not refiner_turned:  # not run where its answer would be dropped
        # from the people as assembled, as the exported predictor does
        crops = facing_crops(depth_m, assembled, stride=stride, min_joint_score=min_joint_score)
        probability = facing_probabilities(facing_classifier, crops,
                                           turnable_people(assembled, min_joint_score=min_joint_score))
    return complete_people(people, depth_m, intrinsics, stride=stride, facing_probability=probability,
                           joint_depth=joint_depth, refined_depths=refined_depths, min_joint_score=min_joint_score,
                           surface_offset_m=surface_offset_m, bone_lengths=bone_lengths, loop=loop)


def assemble_people(heatmaps, pafs, *, peak_threshold=0.2, max_peaks=8, max_people=10, loop=False):
    """The first half of `decode_people`: (keypoints [N, P, J, 2] output pixels, keypoint_scores [N, P, J],
    person_scores [N, P], num_people [N]) of the people grouped from the maps."""
    xy, scores = find_peaks(heatmaps, threshold=peak_threshold, max_peaks=max_peaks)
    return group_people(xy, scores, pafs, max_people=max_people, loop=loop)


def facing_crops(depth_m, people, *, stride, min_joint_score=0.3):
    """[N, P, h, w, 1] each assembled person's depth crop for the facing classifier (`pose_tl.decoding.facing`).

    `stride`: `depth_m`'s pixels per output pixel, a number or (x, y) (crops are cut from the frame as given, at its
    own resolution, as the training crops are, not from the network's resized input)."""
    keypoints, keypoint_scores, _, _ = people
    return person_crops(tf.cast(depth_m, tf.float32), keypoints * tf.cast(stride, tf.float32),
                        keypoint_scores >= min_joint_score)


def refining_crops(depth_m, people, *, stride, min_joint_score=0.3):
    """[N, P, h, w, 1] each assembled person's depth crop for the joint refiner (`pose_tl.decoding.refining`);
    `stride` as for `facing_crops`."""
    keypoints, keypoint_scores, _, _ = people
    return refiner_crops(depth_m, keypoints * tf.cast(stride, tf.float32), keypoint_scores >= min_joint_score)


def present_people(people):
    """[N, P] the assembled person slots that hold a person (the first `num_people` of each frame)."""
    keypoints, _, _, count = people
    return present_slots(count, tf.shape(keypoints)[1])


def turnable_people(people, *, min_joint_score=0.3):
    """[N, P] the assembled people with a left/right pair the facing classifier's answer could turn (`could_turn`)."""
    keypoints, keypoint_scores, _, count = people
    return could_turn(keypoints, keypoint_scores >= min_joint_score, count)


def complete_people(people, depth_m, intrinsics, *, stride, facing_probability=None, joint_depth=None,
                    refined_depths=None, min_joint_score=0.3, surface_offset_m=JOINT_SURFACE_OFFSETS_M,
                    bone_lengths=DEFAULT_BONE_LENGTHS, loop=False):
    """The second half of `decode_people`: assembled `people` turned to agree with `facing_probability` [N, P]
    (None: as assembled), lifted to 3D, their missing joints inferred; returns its output dict. Each joint lies
    behind the surface seen at it by the joint refiner's depth where it moved the joint (`refined_depths`:
    `refining.RefinedDepths`; at its depth behind the trunk where it says so), else by `joint_depth` read at the
    joint, else by `surface_offset_m`."""
    keypoints, keypoint_scores, person_scores, count = people
    max_people = keypoints.shape[1]
    if facing_probability is not None:  # a turned joint takes its twin's refined depth along: the one read where it is
        turn = twin_turns(keypoints, facing_probability, keypoint_scores >= min_joint_score)
        keypoints, keypoint_scores = exchanged(keypoints, turn), exchanged(keypoint_scores, turn)
        if refined_depths is not None:
            refined_depths = RefinedDepths(*(exchanged(values, turn) for values in refined_depths))
    depth_m, intrinsics = tf.cast(depth_m, tf.float32), tf.cast(intrinsics, tf.float32)
    keypoints_px = keypoints * float(stride)  # [N, P, J, 2]
    offset = (read_joint_maps(joint_depth, keypoints) if joint_depth is not None
              else tf.constant(surface_offset_m, tf.float32))
    if refined_depths is not None:
        offset = tf.where(refined_depths.moved, refined_depths.offsets,
                          tf.broadcast_to(offset, tf.shape(refined_depths.offsets)))
    xyz, has_depth = lift_to_camera_space(keypoints_px, depth_m, intrinsics, surface_offset_m=offset)
    if refined_depths is not None:  # hidden behind something the refiner's crop did not show: placed from the trunk
        from_trunk = refined_depths.from_trunk & (refined_depths.trunk_z > 0)
        xyz = tf.where(tf.expand_dims(from_trunk, -1),
                       at_depth(keypoints_px, refined_depths.trunk_z, intrinsics), xyz)
        has_depth = has_depth | from_trunk
    found = (keypoint_scores >= min_joint_score) & has_depth

    hidden = occluded_by_depth(xyz, found, bone_lengths)  # found in 2D, but depth reads the occluder
    xyz, depth_inferred = depth_from_neighbours(keypoints_px, xyz, found & ~hidden, hidden, intrinsics)
    found = found & ~hidden
    xyz, inferred = infer_missing_joints(xyz, found | depth_inferred, bone_lengths, loop=loop)
    # A chain of bones continued towards the camera can end at or behind it, where no pixel sees it: not placed.
    inferred = (inferred & (xyz[..., 2] >= MIN_INFERRED_DEPTH_M)) | depth_inferred

    fx, fy, cx, cy = per_frame_intrinsics(intrinsics, 3)
    projected = tf.stack([xyz[..., 0] / tf.maximum(xyz[..., 2], 1e-6) * fx + cx,
                          xyz[..., 1] / tf.maximum(xyz[..., 2], 1e-6) * fy + cy], axis=-1)
    keypoints_px = tf.where((inferred & ~depth_inferred)[..., None], projected, keypoints_px)
    person = tf.range(max_people) < count[:, None]  # [N, P]
    keep = person[..., None] & (found | inferred)
    out = {"keypoints_2d": tf.where(keep[..., None], keypoints_px, 0.0),
           "keypoints_3d": tf.where(keep[..., None], xyz, 0.0),
           "keypoint_scores": tf.where(found | depth_inferred, keypoint_scores, 0.0),
           "keypoint_inferred": inferred & person[..., None], "person_scores": person_scores}
    return without_empty_people(out, tf.reduce_any(keep, axis=-1))


def without_empty_people(out, has_joints):
    """`out` with the people left without a joint (all found below `min_joint_score`, or none with a depth reading:
    nothing to place them by) dropped, the others moved up in order; num_people counts what is left."""
    _, order = tf.math.top_k(tf.cast(has_joints, tf.float32), k=has_joints.shape[1])  # ties: the earlier first
    kept = take(tf.cast(has_joints, tf.int32), order) > 0  # bools gathered as ints: TFLite's gather_nd

    def reordered(value):
        return take(tf.cast(value, tf.int32), order) > 0 if value.dtype == tf.bool else take(value, order)

    out = {name: reordered(value) for name, value in out.items()}
    out["person_scores"] = tf.where(kept, out["person_scores"], 0.0)
    return {"num_people": tf.reduce_sum(tf.cast(kept, tf.int32), axis=-1), **out}


def read_joint_maps(maps, keypoints):
    """maps [N, Ho, Wo, J] read at each person's joint: keypoints [N, P, J, 2] (x, y output pixels) -> [N, P, J]."""
    y, x = pixel_indices(keypoints, tf.shape(maps)[1], tf.shape(maps)[2])
    joint = tf.broadcast_to(tf.range(NUM_JOINTS), tf.shape(y))
    return tf.gather_nd(tf.cast(maps, tf.float32), tf.stack([batch_index_like(y), y, x, joint], axis=-1))
