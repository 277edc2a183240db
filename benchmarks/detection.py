"""Benchmark: person detection on the held-out synthetic split, RPN vs depth proposals vs both, in one run.

Trains `recipes/detect_person_vgg16_depth.yaml` once (its box head learns from RPN-like and depth-segment RoIs),
then evaluates the same trained model on the test split with each proposal source at inference: COCO AP, AP50,
AP75, AR@100 and milliseconds per frame (batches of 8, end to end: resize, backbone, proposals, head, NMS).
People narrower or shorter than the recipe's `ignore_below` (slivers at the frame edge or behind an occluder) are
COCO crowd regions; the `AP50 all` column scores the same detections with every person of 2 px or more counted.

    .venv/bin/python benchmarks/detection.py [--train-frames 1500] [--finetune-epochs 8] [--out runs/bench_det]
    .venv/bin/python benchmarks/detection.py --model runs/bench_det/run/checkpoints/best.keras  # re-measure only
"""

import argparse
import dataclasses
import tempfile
from pathlib import Path

from pose_tl import run
from pose_tl.config import load_recipe

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "detect_person_vgg16_depth.yaml"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-frames", type=int, default=1500)
    parser.add_argument("--test-frames", type=int, default=200)
    parser.add_argument("--head-epochs", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None,
                        help="a .keras checkpoint an earlier run of this benchmark trained: evaluate it, no training")
    args = parser.parse_args()
    import tensorflow as tf

    from pose_tl.data.detection_data import detection_class_names
    from pose_tl.detection.inference import make_detector
    from pose_tl.evaluation.detection_metrics import evaluate_detections
    from pose_tl.export.loading import load_keras_model
    from pose_tl.run_detection import predict_split

    overrides = ["model.detection.proposals=both", f"data.synthetic.train_frames={args.train_frames}",
                 f"data.synthetic.test_frames={args.test_frames}", "train.tensorboard=false",
                 f"train.phases=[{{name: head, epochs: {args.head_epochs}, learning_rate: 1.0e-3}}, "
                 f"{{name: finetune, epochs: {args.finetune_epochs}, learning_rate: 2.0e-4, schedule: cosine, "
                 f"unfreeze: [block3, block4]}}]"]
    recipe = load_recipe(RECIPE, overrides)
    out = args.out or Path(tempfile.mkdtemp(prefix="detection_bench_"))
    trained_here = args.model is None
    if trained_here:
        args.model = run.train(recipe, out / "run", export=False, verbose=2, log=lambda *_: None)["checkpoint"]
    model = load_keras_model(args.model)
    class_names = detection_class_names(recipe.model.detection, recipe.data)
    rows = []
    for proposals in ("rpn", "depth", "both"):
        config = dataclasses.replace(recipe.model.detection, proposals=proposals)
        predict = tf.function(make_detector(model, detection_config=config, class_names=class_names,
                                            input_size=recipe.model.input_size))
        predict_split(predict, recipe, "test", limit=16)  # trace once before timing
        predictions, frames, ms_per_frame = predict_split(predict, recipe, "test")  # one pass: timed and scored
        metrics = evaluate_detections(predictions, frames, class_names,
                                      ignore_below=recipe.model.detection.ignore_below)
        metrics["ms_per_frame"] = ms_per_frame
        metrics["ap50_all"] = evaluate_detections(predictions, frames, class_names, ignore_below=0.0)["ap50"]
        rows.append((proposals, metrics))
    trained = (f"{args.train_frames} training frames, {args.head_epochs}+{args.finetune_epochs} epochs"
               if trained_here else f"model {args.model}")
    print(f"\nperson detection on the synthetic test split ({args.test_frames} frames), {trained}, one trained model")
    print(f"people to find: {rows[0][1]['objects']}, ignore regions (slivers below "
          f"{recipe.model.detection.ignore_below:.0%} of the frame): {rows[0][1]['ignored']}")
    print(f"{'proposals':<12}{'AP':>8}{'AP50':>8}{'AP75':>8}{'AR@100':>8}{'ms/frame':>10}{'AP50 all':>10}")
    for proposals, m in rows:
        print(f"{proposals:<12}{m['ap']:>8.3f}{m['ap50']:>8.3f}{m['ap75']:>8.3f}{m['ar100']:>8.3f}"
              f"{m['ms_per_frame']:>10.1f}{m['ap50_all']:>10.3f}")
    print("\ntarget: AP50 >= 0.95 on the held-out split")


if __name__ == "__main__":
    main()
