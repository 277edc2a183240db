"""`pose-tl`: thin click commands over `pose_tl.run`; pose_tl errors become one line and exit code 2.

TensorFlow is imported inside commands only, so `pose-tl --help` is instant.
"""

import functools
import json
import logging
import os
import sys
from pathlib import Path

import click

from pose_tl import __version__
from pose_tl.errors import PoseTLError

EXIT_USER_ERROR = 2
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide TensorFlow's C++ start-up chatter


def user_errors(command):
    """Turn pose_tl errors into `Error: <one line>` and exit code 2."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except PoseTLError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
    return wrapper


def recipe_argument(command):
    command = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                           help="Override a recipe field: --set data.batch_size=8, --set 'train.phases=[{epochs: 1}]' "
                                "(the value is parsed as YAML). Repeatable.")(command)
    return click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))(command)


def load(recipe, overrides):
    from pose_tl.config import load_recipe

    return load_recipe(recipe, overrides)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pose-tl")
def main():
    """Transfer learning on depth images: VGG16/VGG19 adapted to depth, driven by recipe files."""
    logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS' per-builder config warnings drown the output


@main.command()
@recipe_argument
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output folder (default: runs/<recipe>).")
@click.option("--resume", is_flag=True, help="Continue the run in the output folder from its last completed epoch.")
@click.option("--no-export", is_flag=True, help="Do not export a SavedModel at the end.")
@user_errors
def train(recipe, overrides, out, resume, no_export):
    """Train RECIPE's model, evaluate it on the validation split and export a SavedModel."""
    from pose_tl import run

    result = run.train(load(recipe, overrides), out, resume=resume, export=False if no_export else None,
                       command=" ".join(["pose-tl", *sys.argv[1:]]), log=click.echo)
    if "report_text" in result:
        click.echo(result["report_text"])
    click.echo(f"run folder:  {result['output_dir']}")
    click.echo(f"checkpoint:  {result['checkpoint']}")
    if "accuracy" in result:
        click.echo(f"metrics:     {result['eval_dir']}/metrics.json (accuracy {result['accuracy']:.4f})")
        click.echo(f"pictures:    {result['eval_dir']}/confusion_matrix.png")
    elif "ap" in result:
        click.echo(f"metrics:     {result['eval_dir']}/metrics.json (AP {result['ap']:.4f}, AP50 {result['ap50']:.4f})")
    elif "eval_dir" in result:
        map_text = "n/a (no 3D labels)" if result["map"] is None else f"{result['map']:.4f}"
        click.echo(f"metrics:     {result['eval_dir']}/metrics.json (PCK@0.2 {result['pck']:.4f}, "
                   f"mAP@10cm {map_text})")
    if "saved_model" in result:
        click.echo(f"SavedModel:  {result['saved_model']}")


@main.command()
@recipe_argument
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, path_type=Path),
              help="A .keras checkpoint or an exported SavedModel folder.")
@click.option("--split", type=click.Choice(["validation", "test", "train"]), default="validation", show_default=True,
              help="test exists for the synthetic source only.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Where reports go.")
@user_errors
def evaluate(recipe, overrides, model_path, split, out):
    """Accuracy, per-class precision/recall and the confusion matrix (text, JSON, PNG)."""
    from pose_tl import run

    result = run.evaluate(load(recipe, overrides), model_path, out, split=split,
                          command=" ".join(["pose-tl", *sys.argv[1:]]))
    click.echo(result["report_text"])
    click.echo(f"reports: {result['eval_dir']}")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--npy-units", type=click.Choice(["m", "mm"]), default="m", show_default=True,
              help="Units of .npy depth files (PNG is always 16-bit millimetres).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Pose models: write one overlay PNG per file here.")
@click.option("--intrinsics", nargs=4, type=float, metavar="FX FY CX CY",
              help="Pose models and detectors: camera intrinsics of the files (default: Kinect v2 optics scaled to the "
                   "width).")
@user_errors
def predict(model_path, files, top_k, npy_units, as_json, out, intrinsics):
    """Classes (classifier), people with 3D skeletons (pose model) or boxes (detector) for each depth FILE
    (.png 16-bit mm, .npy) with MODEL (SavedModel folder, or .keras for classifiers and pose models)."""
    from pose_tl import run

    results = run.predict(model_path, files, top_k=top_k, npy_units=npy_units, out_dir=out,
                          intrinsics=intrinsics or None)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    for item in results:
        if "people" in item:
            click.echo(f"{item['file']}: {len(item['people'])} people"
                       + (f", overlay {item['overlay']}" if "overlay" in item else ""))
            for i, person in enumerate(item["people"]):
                inferred = sum(joint["inferred"] for joint in person["joints"].values())
                click.echo(f"  person {i}: score {person['score']:.3f}, {len(person['joints'])} joints "
                           f"({inferred} inferred)")
            continue
        if "detections" in item:
            click.echo(f"{item['file']}: {len(item['detections'])} detections"
                       + (f", picture {item['overlay']}" if "overlay" in item else ""))
            for detection in item["detections"]:
                x, y, w, h = detection["box_xywh_px"]
                click.echo(f"  {detection['class']} {detection['score']:.3f} at x {x:.0f}, y {y:.0f}, "
                           f"{w:.0f} x {h:.0f} px")
            continue
        ranked = ", ".join(f"{c['class']} {c['probability']:.3f}" for c in item["top_k"])
        click.echo(f"{item['file']}: {ranked}")


@main.command()
@recipe_argument
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "export_format", type=click.Choice(["saved_model", "tflite", "onnx"]),
              default="saved_model", show_default=True,
              help="tflite or onnx (pip install 'pose_tl[onnx]'): classifiers, pose models and detectors; "
                   "float32, uint16 mm in.")
@user_errors
def export(recipe, overrides, checkpoint, out, export_format):
    """Export a .keras CHECKPOINT as a SavedModel (uint16 mm and float32 metres signatures), TFLite or ONNX."""
    from pose_tl import run

    label = {"saved_model": "SavedModel", "tflite": "TFLite", "onnx": "ONNX"}[export_format]
    click.echo(f"{label}: {run.export(checkpoint, out, load(recipe, overrides), export_format=export_format)}")


@main.command()
@recipe_argument
@user_errors
def inspect(recipe, overrides):
    """Print each backbone block (frozen or trained in which phases), parameter counts and output stride."""
    from pose_tl.inspection import inspect_recipe

    click.echo(inspect_recipe(load(recipe, overrides)), nl=False)


@main.group()
def recipes():
    """List, show and validate recipe files."""


@recipes.command("list")
@user_errors
def recipes_list():
    """Recipes shipped with pose_tl."""
    from pose_tl.recipe_files import shipped_recipes

    for path in shipped_recipes():
        click.echo(f"{path.stem:<32}{path}")


@recipes.command("show")
@click.argument("name")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@user_errors
def recipes_show(name, overrides):
    """Print the resolved recipe NAME (a shipped recipe name or a path), bases and defaults filled in."""
    import yaml

    from pose_tl.config import recipe_to_dict
    from pose_tl.recipe_files import find_recipe

    click.echo(yaml.safe_dump(recipe_to_dict(load(find_recipe(name), overrides)), sort_keys=False), nl=False)


@recipes.command("validate")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@user_errors
def recipes_validate(paths):
    """Check each recipe file; print OK or the first problem; exit 2 if any is invalid."""
    failed = 0
    for path in paths:
        try:
            load(path, ())
            click.echo(f"OK     {path}")
        except PoseTLError as exc:
            failed += 1
            click.echo(f"ERROR  {exc}")
    if failed:
        sys.exit(EXIT_USER_ERROR)


@main.group()
def data():
    """Prepare, look at, summarise and convert the synthetic people data of a recipe."""


@data.command("generate")
@recipe_argument
@user_errors
def data_generate(recipe, overrides):
    """Render every split of RECIPE's synthetic data as a TFDS dataset (once; later runs reuse it)."""
    from pose_tl import data_jobs

    result = data_jobs.generate(load(recipe, overrides))
    click.echo(f"{result['name']} in {result['data_dir']}")
    for split, count in result["splits"].items():
        click.echo(f"  {split:<12}{count:>8} frames")


@data.command("show")
@recipe_argument
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG to write.")
@click.option("--split", default="train", show_default=True)
@click.option("--count", default=12, show_default=True, type=click.IntRange(min=1))
@click.option("--columns", default=4, show_default=True, type=click.IntRange(min=1))
@user_errors
def data_show(recipe, overrides, out, split, count, columns):
    """Contact sheet: colour-mapped depth, skeletons, boxes, invalid pixels marked."""
    from pose_tl import data_jobs

    click.echo(f"contact sheet: {data_jobs.show(load(recipe, overrides), out, split, count, columns)}")


@data.command("stats")
@recipe_argument
@click.option("--split", default="train", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@user_errors
def data_stats(recipe, overrides, split, as_json):
    """People per frame, pose classes, joint visibility and valid depth of a split."""
    from pose_tl import data_jobs
    from pose_tl.data.people.report import format_statistics

    result = data_jobs.stats(load(recipe, overrides), split)
    click.echo(json.dumps(result, indent=2) if as_json else format_statistics(result), nl=as_json)


@data.command("convert")
@recipe_argument
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--split", default="train", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["coco"]), default="coco", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), help="Convert the first N frames only.")
@user_errors
def data_convert(recipe, overrides, out, split, fmt, limit):
    """Write a split as COCO-style keypoint JSON with 16-bit PNG depth (the layout pose_tl reads back)."""
    from pose_tl import data_jobs

    result = data_jobs.convert(load(recipe, overrides), out, split, limit)
    click.echo(f"{result['frames']} frames -> {result['annotations']}")


if __name__ == "__main__":
    main()
