"""Benchmark: inference latency of the exports, end to end, against the bare VGG16 backbone, in one run.

Random weights (latency does not depend on them). Rows, at batch 1 and 8:
  backbone         the VGG16 conv stack alone (tf.function), on frames already preprocessed at the input size
  backbone, stored weights  the same with its weights stored in the precision it computes in, as the exports serve
                   it (`pose_tl.export.stored_precision`; under a mixed policy only): what of an export's ratio is
                   the cast of the weights saved, not work left out
  saved_model      the classifier SavedModel's serving_default: uint16 mm frames of the sensor's size in; resize,
                   depth preprocessing, backbone, head, argmax and class names out (the issue's target: <= 1.15x)
  tflite / onnx    the same classifier from `pose-tl export --format tflite|onnx` (float32; class names in JSON)
  pose network     with --pose: the pose recipe's Keras model (backbone and feature-pyramid head), no decoding
  pose saved_model with --pose: its SavedModel end to end (+ peak finding, PAF matching, 3D lifting, XLA-compiled;
                   the facing classifier on the people it could turn and the joint refiner on every person: random
                   weights assemble ~10 people per frame, of whom ~6 could be turned, the worst case)
  pose sm, no refiner  the same SavedModel without the joint refiner (`model.pose.refine_epochs: 0`)
  pose sm, no crop models  and without the facing classifier either (`model.pose.facing_epochs: 0` too)
  pose tflite/onnx with --pose: the same from `pose-tl export --format tflite|onnx` (float32, decoding inside)
  trained ...      with --pose-run DIR: a trained pose run's checkpoint exported as its recipe says (refiner passes)
                   on its recipe's test frames (the people it finds set the crop models' work), and exported with one
                   refiner pass / without the refiner / without any crop model
  detector ...     with --detector: the person detector recipe's SavedModel, .tflite and .onnx end to end (RPN and
                   depth proposals, RoIAlign, box head, NMS; its VGG16 stops at block 4, the ratio is still to the
                   whole backbone)
The ratio is to the backbone row of the same precision (the SavedModel runs under the recipe's `precision: auto`),
timed in the same rounds: each round calls every row once, so drift of the machine hits them alike.

    .venv/bin/python benchmarks/inference.py [--input-size 96 128] [--frame-size 120 160] [--repeats 20] [--pose]
        [--pose-run runs/bench/hed-bsds500] [--detector] [--set model.pose.stages=1 ...]
"""

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
BATCHES = (1, 8)


def time_ms(fn, warmup, repeats, reduce=statistics.median):
    """`reduce` of the wall times of `fn()` in milliseconds, after `warmup` untimed calls (tracing, caches)."""
    return time_interleaved({"fn": fn}, warmup, repeats, reduce)["fn"]


def time_interleaved(calls, warmup, repeats, reduce=statistics.median):
    """{key: `reduce` of ms} of `calls` {key: fn()}, timed in rounds of one call each (so that the machine's drift
    during the run hits every row alike), after `warmup` untimed calls each (tracing, XLA compilation, caches)."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            times[key].append((time.perf_counter() - start) * 1000.0)
    return {key: reduce(values) for key, values in times.items()}


def build_classifier(input_size, policy):
    """The shipped VGG16 depth classifier recipe at `input_size`, random weights, under the dtype `policy`."""
    from pose_tl.config import load_recipe
    from pose_tl.models.factory import build_model
    from pose_tl.training.precision import dtype_policy

    recipe = load_recipe(RECIPES / "classify_vgg16_depth.yaml",
                         ["model.backbone.weights=none", f"model.input_size=[{input_size[0]}, {input_size[1]}]"])
    with dtype_policy(policy):
        return build_model(recipe.model, ["c0", "c1", "c2", "c3"])


def build_pose_model(input_size, policy, overrides=()):
    from pose_tl.config import load_recipe
    from pose_tl.data.people.skeleton import JOINT_NAMES, PAF_LIMBS
    from pose_tl.models.facing import build_facing_classifier
    from pose_tl.models.factory import build_pose_model as build
    from pose_tl.models.refiner import build_joint_refiner
    from pose_tl.training.precision import dtype_policy

    recipe = load_recipe(RECIPES / "pose_vgg16_depth.yaml",
                         ["model.backbone.weights=none", f"model.input_size=[{input_size[0]}, {input_size[1]}]",
                          *overrides])
    with dtype_policy(policy):
        model = build(recipe.model, len(JOINT_NAMES), len(PAF_LIMBS))
    # The recipe's facing classifier and joint refiner (random weights: the same work as trained ones per person)
    # run inside decoding.
    crop_models = {"facing_model": build_facing_classifier(seed=0) if recipe.model.pose.facing_epochs else None,
                   "refiner_model": build_joint_refiner(seed=0) if recipe.model.pose.refine_epochs else None}
    return model, recipe.model.pose.output_stride, crop_models


def build_detector(input_size, policy):
    """The person detector recipe at `input_size`, random weights: (model, its detection config)."""
    from pose_tl.config import load_recipe
    from pose_tl.models.factory import build_detector as build
    from pose_tl.training.precision import dtype_policy

    recipe = load_recipe(RECIPES / "detect_person_vgg16_depth.yaml",
                         ["model.backbone.weights=none", f"model.input_size=[{input_size[0]}, {input_size[1]}]"])
    with dtype_policy(policy):
        return build(recipe.model, ["person"]), recipe.model.detection


def backbone_runner(model):
    """fn(batch) timing the conv stack alone on preprocessed float32 frames of the model's input size."""
    import tensorflow as tf

    from pose_tl.models.classifier import backbone_of

    backbone = tf.function(lambda x: backbone_of(model)(x, training=False), autograph=False)
    return lambda frames: backbone(frames).numpy()


def network_runner(model):
    """fn(batch): the whole Keras model (backbone and head, no decoding) on preprocessed frames."""
    import tensorflow as tf

    network = tf.function(lambda x: model(x, training=False), autograph=False)
    return lambda frames: {name: value.numpy() for name, value in network(frames).items()}


def saved_model_runner(folder):
    import tensorflow as tf

    signature = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return lambda depth: {name: value.numpy() for name, value in signature(depth=tf.constant(depth)).items()}


def tflite_runner(path):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=os.cpu_count())
    runner = interpreter.get_signature_runner("serving_default")
    return lambda depth: runner(depth=depth)


def onnx_runner(path, with_intrinsics=False):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # Its idle threads spin-wait by default, which would slow whichever row runs next in the interleaved rounds.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    if not with_intrinsics:
        return lambda depth: session.run(None, {"depth": depth})
    return lambda depth: session.run(None, {"depth": depth, "intrinsics": kinect_v2_intrinsics(depth)})


def kinect_v2_intrinsics(depth):
    """What a pose SavedModel's serving_default assumes (`default_intrinsics`), in numpy so the timed call stays
    onnxruntime's, for the .onnx that takes intrinsics as an input."""
    from pose_tl.data.people.engine import KINECT_V2_DEPTH

    batch, height, width = depth.shape
    sensor_width, _, sensor_focal = KINECT_V2_DEPTH
    focal = sensor_focal * width / sensor_width
    return np.tile(np.array([[focal, focal, width / 2, height / 2]], np.float32), (batch, 1))


def rows(args, policy, folder):
    """[(name, precision, run(inputs), inputs(batch_size))] for every row of the table."""
    from pose_tl.export.detection_saved_model import export_detector
    from pose_tl.export.formats import export_model_file
    from pose_tl.export.pose_saved_model import export_pose_model
    from pose_tl.export.saved_model import export_classifier
    from pose_tl.export.stored_precision import weights_in_compute_dtype

    rng = np.random.default_rng(0)

    def frames(batch):
        return rng.integers(400, 5000, size=(batch, *args.frame_size)).astype(np.uint16)

    def preprocessed(batch):
        return rng.uniform(-114.8, 140.2, size=(batch, *args.input_size, 1)).astype(np.float32)

    def files_with_intrinsics(name, model, **export_options):
        """Rows of `model`'s .tflite (serving_default: Kinect v2 intrinsics) and .onnx (intrinsics as an input)."""
        tflite = export_model_file(model, folder / f"{name}_tflite", "tflite", **export_options)
        found = [(f"{name} tflite", "float32", tflite_runner(tflite), frames)]
        if not args.no_onnx:
            onnx = export_model_file(model, folder / f"{name}_onnx", "onnx", **export_options)
            found.append((f"{name} onnx", "float32", onnx_runner(onnx, with_intrinsics=True), frames))
        return found

    model = build_classifier(args.input_size, policy)
    export_classifier(model, folder / "saved_model")
    table = [("backbone", policy, backbone_runner(model), preprocessed)]
    stored = weights_in_compute_dtype(model)
    if stored is not model:
        table.append(("backbone, stored weights", policy, backbone_runner(stored), preprocessed))
    if policy != "float32":
        table.append(("backbone", "float32", backbone_runner(build_classifier(args.input_size, "float32")),
                      preprocessed))
    table.append(("saved_model", policy, saved_model_runner(folder / "saved_model"), frames))
    table.append(("tflite", "float32", tflite_runner(export_model_file(model, folder / "tflite", "tflite")),
                  frames))
    if not args.no_onnx:
        table.append(("onnx", "float32", onnx_runner(export_model_file(model, folder / "onnx", "onnx")),
                      frames))
    if args.pose:
        pose_model, stride, crop_models = build_pose_model(args.input_size, policy, args.set)
        export_pose_model(pose_model, folder / "pose", output_stride=stride, **crop_models)
        table.append(("pose network", policy, network_runner(pose_model), preprocessed))
        table.append(("pose saved_model", policy, saved_model_runner(folder / "pose"), frames))
        # what the joint refiner and the facing classifier cost, in the same rounds
        if crop_models["refiner_model"] is not None:
            export_pose_model(pose_model, folder / "pose_unrefined", output_stride=stride,
                              facing_model=crop_models["facing_model"])
            table.append(("pose sm, no refiner", policy, saved_model_runner(folder / "pose_unrefined"), frames))
        if any(crop_model is not None for crop_model in crop_models.values()):
            export_pose_model(pose_model, folder / "pose_plain", output_stride=stride)
            table.append(("pose sm, no crop models", policy, saved_model_runner(folder / "pose_plain"), frames))
        table += files_with_intrinsics("pose", pose_model, output_stride=stride, **crop_models)
    if args.pose_run:
        table += trained_pose_rows(args.pose_run, args.input_size, policy, folder)
    if args.detector:
        detector, detection = build_detector(args.input_size, policy)
        export_detector(detector, folder / "detector", detection_config=detection, class_names=["person"],
                        input_size=tuple(args.input_size))
        table.append(("detector saved_model", policy, saved_model_runner(folder / "detector"), frames))
        table += files_with_intrinsics("detector", detector, detection_config=detection)
    return table


def trained_pose_rows(run_dir, input_size, policy, folder):
    """Rows of a trained pose run (`pose-tl train --out run_dir`) on its recipe's test frames: its SavedModel, and
    its checkpoint exported without the joint refiner and without any crop model; the people it finds per frame,
    not random maps', set the work of the crop models."""
    from pose_tl.config import load_recipe
    from pose_tl.data.people_sources import people_frames
    from pose_tl.export.loading import load_crop_models, load_keras_model
    from pose_tl.export.pose_saved_model import export_pose_model

    run_dir = Path(run_dir)
    recipe = load_recipe(run_dir / "recipe.resolved.yaml")
    if list(recipe.model.input_size) != list(input_size):
        raise SystemExit(f"{run_dir}: its input size {recipe.model.input_size} is not --input-size {input_size}")
    test = np.stack([frame.depth_mm for frame in people_frames(recipe.data, recipe.seed, "test", 16)])
    people = load_crop_models(run_dir / "checkpoints" / "final.keras")
    checkpoint = load_keras_model(run_dir / "checkpoints" / "final.keras")
    bone_lengths = json.loads((run_dir / "bone_lengths.json").read_text())
    stride = recipe.model.pose.output_stride
    exports = {"trained_full": {**people, "refine_passes": recipe.model.pose.refine_passes},
               "trained_one_pass": {**people, "refine_passes": 1},
               "trained_unrefined": {"facing_model": people["facing_model"]}, "trained_plain": {}}
    for name, options in exports.items():  # as this code exports them (the run's own SavedModel may be older)
        export_pose_model(checkpoint, folder / name, output_stride=stride, bone_lengths=bone_lengths, **options)
    served = saved_model_runner(folder / "trained_full")
    count = served(test)["num_people"]
    print(f"{run_dir}: {count.mean():.2f} people per test frame ({len(test)} frames)")
    cycle = {"next": 0}

    def frames(batch):
        start = cycle["next"] = (cycle["next"] + batch) % len(test)
        return np.take(test, range(start, start + batch), axis=0, mode="wrap")

    return [("trained pose sm", policy, served, frames),
            ("trained, 1 refiner pass", policy, saved_model_runner(folder / "trained_one_pass"), frames),
            ("trained, no refiner", policy, saved_model_runner(folder / "trained_unrefined"), frames),
            ("trained, no crop models", policy, saved_model_runner(folder / "trained_plain"), frames)]


def time_rows(table, warmup, repeats):
    """{(name, precision, batch): median ms per batch}, every row of a batch size interleaved."""
    results = {}
    for batch in BATCHES:
        calls = {}
        for name, precision, run, inputs in table:
            calls[(name, precision, batch)] = functools.partial(run, inputs(batch))
        results.update(time_interleaved(calls, warmup, repeats))
    return {key: results[key] for key in sorted(results, key=lambda key: (table_order(table, key), key[2]))}


def table_order(table, key):
    return [(name, precision) for name, precision, _, _ in table].index(key[:2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, nargs=2, default=[96, 128], help="the model's (pose recipe's)")
    parser.add_argument("--frame-size", type=int, nargs=2, default=[120, 160], help="frames given to the exports")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--pose", action="store_true", help="also the pose SavedModel (decoding inside)")
    parser.add_argument("--pose-run", type=Path, default=None, help="also a trained pose run's SavedModel on its test "
                        "frames, with and without its crop models (e.g. the accuracy benchmark's out/hed-bsds500)")
    parser.add_argument("--detector", action="store_true", help="also the person detector's exports")
    parser.add_argument("--no-onnx", action="store_true", help="skip onnxruntime (pose_tl[onnx] not installed)")
    parser.add_argument("--set", action="append", default=[], help="pose recipe override, as `pose-tl train --set` "
                        "(e.g. model.pose.stages=1)")
    args = parser.parse_args()
    from pose_tl.training.precision import resolve_precision

    policy = resolve_precision("auto")
    with tempfile.TemporaryDirectory(prefix="inference_bench_") as tmp:
        results = time_rows(rows(args, policy, Path(tmp)), args.warmup, args.repeats)
    print(f"\nVGG16 depth classifier, input {args.input_size[0]}x{args.input_size[1]}, frames "
          f"{args.frame_size[0]}x{args.frame_size[1]} uint16, {os.cpu_count()} CPU cores, median of {args.repeats}"
          f"{'; pose: ' + ' '.join(args.set) if args.set else ''}")
    print(f"{'model':<26}{'precision':<16}{'batch':>6}{'ms/batch':>10}{'img/s':>9}{'x backbone':>12}")
    for (name, precision, batch), ms in results.items():
        ratio = ms / results[("backbone", precision, batch)]
        print(f"{name:<26}{precision:<16}{batch:>6}{ms:>10.1f}{1000.0 * batch / ms:>9.1f}{ratio:>12.2f}")


if __name__ == "__main__":
    main()
