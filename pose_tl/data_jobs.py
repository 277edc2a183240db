"""`pose-tl data ...`: prepare, look at, summarise and convert the people data a recipe describes."""

from pathlib import Path

from pose_tl.errors import DataError


def _people_builder(recipe):
    from pose_tl.data.sources import synthetic_builder

    if recipe.data.source != "synthetic":
        raise DataError(f"{recipe.source}: `pose-tl data` works on people data; set data.source: synthetic "
                        f"(found {recipe.data.source!r})")
    return synthetic_builder(recipe.data, recipe.seed)


def _split_frames(builder, split, limit=None):
    from pose_tl.data.people.tfds_builder import frames_from_builder

    if split not in builder.info.splits:
        raise DataError(f"split {split!r} is empty; prepared splits: {sorted(builder.info.splits)}")
    return frames_from_builder(builder, split, limit)


def generate(recipe):
    """Render (once) every split; returns where they are and how many frames each has."""
    builder = _people_builder(recipe)
    return {"data_dir": str(builder.data_dir), "name": builder.info.full_name,
            "splits": {name: info.num_examples for name, info in builder.info.splits.items()}}


def show(recipe, out, split="train", count=12, columns=4):
    from pose_tl.data.people.report import write_contact_sheet

    frames = list(_split_frames(_people_builder(recipe), split, count))
    caption = f"{recipe.source} {split} - white: visible joint, orange ring: occluded, magenta: no depth"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return str(write_contact_sheet(frames, out, columns=columns, caption=caption))


def stats(recipe, split="train", limit=None):
    from pose_tl.data.people.report import people_statistics

    return people_statistics(_split_frames(_people_builder(recipe), split, limit))


def convert(recipe, out, split="train", limit=None):
    """Write a split in the COCO-style keypoint layout (16-bit PNG depth + annotations.json)."""
    from pose_tl.data.people.coco_format import write_coco_dataset

    frames = list(_split_frames(_people_builder(recipe), split, limit))
    write_coco_dataset(frames, Path(out), file_prefix=split)
    return {"folder": str(out), "frames": len(frames), "annotations": str(Path(out) / "annotations.json")}
