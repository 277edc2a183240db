"""Export a pose model as a SavedModel that returns people with 3D skeletons, decoding included.

Signatures (frames of any size; resized to the model's input with nearest neighbour, as in training):
  serving_default(depth: uint16 [N, H, W] millimetres) — intrinsics: Kinect v2 depth optics scaled to W.
  serving_with_intrinsics(depth: uint16 [N, H, W], intrinsics: float32 [N, 4] (fx, fy, cx, cy) of those frames)
Outputs: num_people [N], keypoints_2d [N, P, J, 2] (frame pixels), keypoints_3d [N, P, J, 3] (metres, camera frame:
x right, y down, z forward), keypoint_scores [N, P, J], keypoint_inferred [N, P, J], person_scores [N, P],
heatmaps [N, Ho, Wo, J]. `pose_tl.json` beside `saved_model.pb` names the joints and limbs.
"""

import json

import keras
import tensorflow as tf

from pose_tl.atomic import atomic_path
from pose_tl.backbones.depth_preprocessing import depth_to_metres
from pose_tl.data.augment import resize_depth
from pose_tl.data.people.engine import KINECT_V2_DEPTH
from pose_tl.data.people.skeleton import JOINT_NAMES, LIMBS, PAF_LIMBS
from pose_tl.decoding.facing import facing_probabilities, on_person_slots
from pose_tl.decoding.flip_test import flip_test_maps
from pose_tl.decoding.lifting import JOINT_SURFACE_OFFSETS_M
from pose_tl.decoding.occlusion import DEFAULT_BONE_LENGTHS
from pose_tl.decoding.people import (assemble_people, complete_people, facing_crops, present_people, refining_crops,
                                     turnable_people)
from pose_tl.decoding.refining import (REFINE_PASSES, REFINER_DEPTHS, REFINER_FACING, REFINER_TRUNK_DEPTHS,
                                      answers_facing, refine_people, refiner_heatmaps)
from pose_tl.export.saved_model import DEFAULT_SIGNATURE, METADATA_FILE
from pose_tl.export.stored_precision import compute_dtype, mixed_policy, weights_in_compute_dtype
from pose_tl.models.batch_norm_folding import fold_batch_norms, fold_lateral_norms
from pose_tl.models.pose_model import HEATMAPS, JOINT_DEPTH, PAFS
from pose_tl.training.precision import compute_policy, copy_with_policy

INTRINSICS_SIGNATURE = "serving_with_intrinsics"
DECODED_MAPS = (HEATMAPS, PAFS, JOINT_DEPTH)  # what decoding reads: the last stage's maps (joint depths if learned)


def default_intrinsics(height, width):
    """Kinect v2 depth optics scaled to a frame of `width` (square pixels, centred principal point)."""
    sensor_width, _, focal = KINECT_V2_DEPTH
    f = focal * tf.cast(width, tf.float32) / sensor_width
    return tf.stack([f, f, tf.cast(width, tf.float32) / 2.0, tf.cast(height, tf.float32) / 2.0])


def make_pose_predictor(model, *, output_stride, bone_lengths=DEFAULT_BONE_LENGTHS,
                        surface_offset_m=JOINT_SURFACE_OFFSETS_M, max_people=10, compiled_decoding=True,
                        flip_test=False, facing_model=None, refiner_model=None, refine_passes=REFINE_PASSES):
    """fn(depth [N, H, W] uint16 mm or float metres, intrinsics [N, 4]) -> the output dict above.

    With `compiled_decoding`, the steps before and after the network (resizing; assembling people; completing
    them) each run as an XLA-compiled function, compiled on the first call for each frame shape and batch size:
    decoding is hundreds of small ops, whose dispatch, not arithmetic, is its cost (~3x faster at batch 1, ~2x at
    batch 8, on 2 CPU cores). The network stays with TensorFlow's kernels (XLA's convolutions are slower on CPU),
    and so does the facing classifier (`pose_tl.models.facing`), which runs between the two decoding steps on the
    assembled people's crops, and whose answer turns left/right pairs (`pose_tl.decoding.facing`), and so does the
    joint refiner (`pose_tl.models.refiner`), which finds each assembled person's joints again in its crop
    (`pose_tl.decoding.refining`) before they are turned and lifted, `refine_passes` times, the crops cut again
    between passes; where the refiner also answers which way each person faces, each pass turns its pairs to that
    answer (`pose_tl.decoding.refining.crop_peaks`), and the classifier's, if any, is not used. TFLite and ONNX
    conversion need compilation off: they convert TensorFlow ops. With `flip_test`, the maps are averaged with those
    of the mirrored frame (`pose_tl.decoding.flip_test`): the network runs twice, and so does the refiner (on
    mirrored crops).
    """
    input_h, input_w = model.input_shape[1:3]
    facing_model = used_facing_classifier(facing_model, refiner_model)
    facing_model, refiner_model = served_crop_model(model, facing_model), served_crop_model(model, refiner_model)
    model = served_pose_network(model)

    def prepare(depth):
        return resize_depth(tf.expand_dims(depth_to_metres(depth), -1), (input_h, input_w))  # TFLite: no [..., None]

    def frame_pixels(frame_shape):
        """(x, y) frame pixels per output pixel."""
        return float(output_stride) * tf.cast(frame_shape[::-1], tf.float32) / tf.constant([input_w, input_h],
                                                                                          tf.float32)

    def assemble(maps, depth):
        people = assemble_people(maps[HEATMAPS], maps[PAFS], max_people=max_people, loop=compiled_decoding)
        out = {"people": people}
        # The crop models' crops are cut from the frame as given (its own resolution, as the training crops are).
        # compiled: only the people a crop model acts on are computed; else every slot (a static graph to convert)
        frame_m, stride = depth_to_metres(depth), frame_pixels(tf.shape(depth)[1:3])
        if refiner_model is not None:
            out.update(refiner_crops=refining_crops(frame_m, people, stride=stride),
                       present=present_people(people) if compiled_decoding else None)
        if facing_model is not None:
            out.update(crops=facing_crops(frame_m, people, stride=stride), wanted=turnable_people(people))
        return out

    def recut(people, refined_maps, depth):
        """Between the refiner's passes: its joints, and the crops cut again around them."""
        stride = frame_pixels(tf.shape(depth)[1:3])
        people, _ = refine_people(people, refined_maps, stride=stride)
        return people, refining_crops(depth_to_metres(depth), people, stride=stride)

    def finish(maps, people, facing_probability, refined_maps, metres, intrinsics, depth):
        refined_depths, frame_shape = None, tf.shape(depth)[1:3]
        if refined_maps is not None:  # the refiner's crops are cut from the frame: so are its depths behind the trunk
            people, refined_depths = refine_people(people, refined_maps, stride=frame_pixels(frame_shape),
                                                   depth_m=depth_to_metres(depth))
        scale = tf.constant([input_w, input_h], tf.float32) / tf.cast(frame_shape[::-1], tf.float32)  # (sx, sy)
        fx, fy, cx, cy = tf.unstack(tf.cast(intrinsics, tf.float32), axis=-1)
        scaled = tf.stack([fx * scale[0], fy * scale[1], cx * scale[0], cy * scale[1]], axis=-1)
        out = complete_people(people, metres[..., 0], scaled, stride=output_stride,
                              facing_probability=facing_probability, joint_depth=maps.get(JOINT_DEPTH),
                              refined_depths=refined_depths,
                              bone_lengths=bone_lengths, surface_offset_m=surface_offset_m, loop=compiled_decoding)
        out["keypoints_2d"] = out["keypoints_2d"] / scale
        out["keypoint_inferred"] = tf.cast(out["keypoint_inferred"], tf.bool)
        out["heatmaps"] = tf.cast(maps[HEATMAPS], tf.float32)
        return out

    if compiled_decoding:
        prepare, assemble, recut, finish = (tf.function(step, autograph=False, jit_compile=True)
                                            for step in (prepare, assemble, recut, finish))

    def predict(depth, intrinsics):
        metres = prepare(depth)
        maps = flip_test_maps(model, metres, DECODED_MAPS) if flip_test else model(metres, training=False)
        maps = {name: maps[name] for name in DECODED_MAPS if name in maps}
        assembled = assemble(maps, depth)
        people, probability, refined_maps = assembled["people"], None, None
        if facing_model is not None:
            wanted = assembled["wanted"]  # as assembled: the refiner may move joints after
            probability = facing_probabilities(lambda crops: facing_model(crops, training=False), assembled["crops"],
                                               wanted if compiled_decoding else None)
            probability = probability if compiled_decoding else tf.where(wanted, probability, 0.5)
        if refiner_model is not None:
            crops = assembled["refiner_crops"]
            for refine_pass in range(refine_passes):
                refined_maps = on_person_slots(
                    lambda c: refiner_heatmaps(lambda x: refiner_model(x, training=False), c, flip_test), crops,
                    assembled["present"])
                if refine_pass < refine_passes - 1:
                    people, crops = recut(people, refined_maps, depth)
            if answers_facing(refined_maps):  # it turned the pairs itself, on the joints it found
                probability = None
        return dict(finish(maps, people, probability, refined_maps, metres, intrinsics, depth))

    return predict


def pose_metadata(model, output_stride, bone_lengths, flip_test=False, facing_model=None, refiner_model=None,
                  refine_passes=REFINE_PASSES):
    preprocessing = model.get_layer("depth_preprocessing")
    return {"task": "pose", "joint_names": list(JOINT_NAMES), "limbs": [list(limb) for limb in LIMBS],
            "paf_limbs": [list(limb) for limb in PAF_LIMBS],
            "input_size": list(model.input_shape[1:3]), "output_stride": output_stride,
            "depth_range_m": [preprocessing.min_m, preprocessing.max_m], "depth_encoding": preprocessing.encoding,
            "bone_lengths_m": list(bone_lengths), "flip_test": bool(flip_test),
            "facing_classifier": facing_model is not None, "joint_refiner": refiner_model is not None,
            "refine_passes": refine_passes if refiner_model is not None else 0,
            "refiner_joint_depths": refiner_model is not None and REFINER_DEPTHS in refiner_model.output_names,
            "refiner_trunk_depths": refiner_model is not None and REFINER_TRUNK_DEPTHS in refiner_model.output_names,
            "refiner_facing": refiner_model is not None and REFINER_FACING in refiner_model.output_names,
            "signatures": {DEFAULT_SIGNATURE: "depth uint16 [N,H,W] mm; Kinect v2 intrinsics scaled to W",
                           INTRINSICS_SIGNATURE: "depth uint16 [N,H,W] mm, intrinsics float32 [N,4] fx,fy,cx,cy"},
            "outputs": ["num_people", "keypoints_2d", "keypoints_3d", "keypoint_scores", "keypoint_inferred",
                        "person_scores", "heatmaps"]}


def export_with_intrinsics(models, destination, predict, metadata):
    """Write a SavedModel of `predict(depth, intrinsics)` (which calls the Keras `models`) with both signatures,
    plus pose_tl.json, atomically (a killed export leaves the previous one or nothing)."""
    def with_default_intrinsics(depth):
        shape = tf.shape(depth)
        return predict(depth, tf.tile(default_intrinsics(shape[1], shape[2])[None], [shape[0], 1]))

    archive = keras.export.ExportArchive()
    for model in models:
        archive.track(model)
    archive.add_endpoint(DEFAULT_SIGNATURE, with_default_intrinsics,
                         input_signature=[tf.TensorSpec([None, None, None], tf.uint16, name="depth")])
    archive.add_endpoint(INTRINSICS_SIGNATURE, predict,
                         input_signature=[tf.TensorSpec([None, None, None], tf.uint16, name="depth"),
                                          tf.TensorSpec([None, 4], tf.float32, name="intrinsics")])
    with atomic_path(destination) as tmp:
        archive.write_out(str(tmp), verbose=False)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return destination


def export_pose_model(model, destination, *, output_stride, bone_lengths=DEFAULT_BONE_LENGTHS, xla_decoding=True,
                      flip_test=False, facing_model=None, refiner_model=None, refine_passes=REFINE_PASSES):
    """Write the pose SavedModel (decoding, the flip test, the facing classifier and the joint refiner where asked,
    inside) atomically. A facing classifier whose answer would not be used is left out (`used_facing_classifier`)."""
    facing_model = used_facing_classifier(facing_model, refiner_model)
    facing_model, refiner_model = served_crop_model(model, facing_model), served_crop_model(model, refiner_model)
    model = served_pose_network(model)  # the one `predict` runs: its variables are the export's
    predict = make_pose_predictor(model, output_stride=output_stride, bone_lengths=bone_lengths,
                                  compiled_decoding=xla_decoding, flip_test=flip_test, facing_model=facing_model,
                                  refiner_model=refiner_model, refine_passes=refine_passes)
    metadata = {**pose_metadata(model, output_stride, bone_lengths, flip_test, facing_model, refiner_model,
                                refine_passes),
                "xla_decoding": bool(xla_decoding)}
    return export_with_intrinsics(tracked_models(model, facing_model, refiner_model), destination, predict, metadata)


def used_facing_classifier(facing_model, refiner_model):
    """The facing classifier, or None where the joint refiner answers which way people face: the refiner then turns
    the pairs itself, on the joints it found, and the classifier's answer would be computed only to be dropped."""
    refiner_answers = refiner_model is not None and REFINER_FACING in refiner_model.output_names
    return None if refiner_answers else facing_model


def served_pose_network(model):
    """The pose network as it serves: its head's lateral batch norms folded into their convolutions
    (`fold_lateral_norms`), its weights stored in the precision it computes in (`weights_in_compute_dtype`). A network
    already served so comes back as it is."""
    return weights_in_compute_dtype(fold_lateral_norms(model))


def served_crop_model(model, crop_model):
    """A crop model (facing classifier, joint refiner) as it serves beside the pose network `model`: in its
    precision, batch normalisation folded into the convolutions (`fold_batch_norms`), its weights stored in the
    precision it computes in (`weights_in_compute_dtype`); None stays None. A model already served so comes back as
    it is (its variables are the ones an export tracks)."""
    return None if crop_model is None else weights_in_compute_dtype(fold_batch_norms(computing_like(model,
                                                                                                  crop_model)))


def computing_like(model, crop_model):
    """A crop model (facing classifier, joint refiner) computing in the pose network's precision (the facing
    classifier under mixed_bfloat16 takes ~0.6x the time of float32 on this CPU, and its answers move by < 0.01);
    None stays None."""
    if crop_model is None or compute_dtype(crop_model) == compute_dtype(model):
        return crop_model
    return copy_with_policy(crop_model, mixed_policy(compute_policy(model)))


def tracked_models(model, *crop_models):
    """The Keras models an export of the pose predictor must track (their variables are its weights)."""
    return [model, *(crop_model for crop_model in crop_models if crop_model is not None)]
