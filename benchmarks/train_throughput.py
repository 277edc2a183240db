"""Benchmark: training throughput of pose_tl against plain Keras, the input pipeline alone, the feature cache.

One run, same machine, interleaved repeats (machines are noisy, so the ratios are the result):

1. Fine-tuning VGG16 on depth at 128x128, blocks 1-3 frozen, a GAP + dense classification head, batch 16:
   (a) the plain way the Keras transfer-learning guide writes it: `keras.applications.VGG16` (1-channel input,
   random weights), `image_dataset_from_directory` + prefetch, float32 `fit`; (b) pose_tl with its defaults
   (`train.precision: auto`, `train.kernels: auto`, the recipe's tf.data pipeline with augmentation), built by
   the same builders as `pose-tl train` and fit in its training kernels; (a) again with the one line that turns
   on the same mixed precision, to show what pose_tl adds beyond it; and (b) with `train.kernels: keras`, to show
   what pose_tl's kernels add. Images per second over timed steps after warm-up, and the ratio to (a).
2. The pose_tl input pipeline alone (decode, augment, batch), in images per second, against what training
   consumes.
3. A head-only phase: epoch time running the frozen backbone every epoch vs the frozen-feature cache.

    .venv/bin/python benchmarks/train_throughput.py [--repeats 5] [--steps 12] [--size 128]
"""

import argparse
import contextlib
import dataclasses
import functools
import statistics
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from pose_tl.config import load_recipe
from pose_tl.data.classification_data import classification_splits
from pose_tl.data.shapes import write_shapes_dataset
from pose_tl.training.precision import dtype_policy, resolve_precision

BATCH = 16
WARMUP_STEPS = 2


class StepClock(keras.callbacks.Callback):
    """Wall time of the training steps after the first `skip` of each `fit`."""

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.seconds = 0.0
        self.steps = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if batch >= self.skip:
            self.seconds += time.perf_counter() - self.started
            self.steps += 1


def images_per_second(model, dataset, steps, kernels=contextlib.nullcontext):
    """`kernels()`: the context `fit` runs in (pose_tl's training kernels for its model)."""
    clock = StepClock(WARMUP_STEPS)
    with kernels():
        model.fit(dataset, epochs=1, steps_per_epoch=steps + WARMUP_STEPS, callbacks=[clock], verbose=0)
    return clock.steps * BATCH / clock.seconds


def plain_keras(root, size, num_classes, policy="float32"):
    """What a user writes from the Keras transfer-learning guide (no pose_tl), under the dtype `policy`."""
    dataset = keras.utils.image_dataset_from_directory(
        root, color_mode="grayscale", image_size=(size, size), batch_size=BATCH, shuffle=True, seed=1,
        verbose=False).repeat().prefetch(tf.data.AUTOTUNE)
    with dtype_policy(policy):
        return _plain_model(size, num_classes), dataset


def _plain_model(size, num_classes):
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 1))
    for layer in base.layers:
        layer.trainable = not layer.name.startswith(("block1", "block2", "block3"))
    inputs = keras.Input((size, size, 1))
    x = base(keras.layers.Rescaling(1 / 255.0)(inputs))
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(keras.layers.Dense(256, activation="relu")(x))
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def pose_tl_recipe(root, size, folder, unfreeze):
    recipe = folder / f"throughput_{'_'.join(unfreeze) or 'head'}.yaml"
    recipe.write_text(
        f"task: classification\nmodel:\n  backbone: {{name: vgg16, weights: none, freeze: {{up_to: block3_pool}}}}\n"
        f"  input_size: [{size}, {size}]\n"
        f"data: {{source: folder, root: {root}, batch_size: {BATCH}, validation_fraction: 0.1}}\n"
        f"train:\n  phases: [{{name: p, epochs: 1, learning_rate: 1.0e-4, unfreeze: {list(unfreeze)}}}]\n")
    return load_recipe(recipe)


def pose_tl_model(recipe, data, policy):
    """The classifier and its compiled fine-tuning setup, exactly as `pose-tl train` builds them."""
    from pose_tl.backbones.freezing import set_trainable_layers
    from pose_tl.config.validation import frozen_layer_names
    from pose_tl.models.classifier import backbone_of
    from pose_tl.models.factory import build_model
    from pose_tl.training.optimizers import build_optimizer
    from pose_tl.training.phases import compile_classifier

    with dtype_policy(policy):
        model = build_model(recipe.model, data.class_names)
        phase = recipe.train.phases[0]
        set_trainable_layers(backbone_of(model), frozen_layers=frozen_layer_names(recipe.model.backbone),
                             unfreeze=phase.unfreeze)
        compile_classifier(model, build_optimizer(recipe.train, phase, steps_per_epoch=100))
    return model


def pipeline_images_per_second(dataset, batches):
    iterator = iter(dataset)
    for _ in range(WARMUP_STEPS):
        next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * BATCH / (time.perf_counter() - started)


def epoch_seconds(model, train, epochs):
    times = []
    timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda *_: times.append(time.perf_counter()),
                                           on_epoch_end=lambda *_: times.append(time.perf_counter()))
    model.fit(train, epochs=epochs, callbacks=[timer], verbose=0)
    return [end - start for start, end in zip(times[::2], times[1::2])]


def feature_cache_rows(root, size, folder, policy, epochs):
    """Head-only epochs: the frozen backbone every epoch vs the cache (its one-off fill reported apart)."""
    from pose_tl.models.classifier import backbone_of
    from pose_tl.training.feature_cache import FrozenFeatureCache

    recipe = pose_tl_recipe(root, size, folder, unfreeze=())
    data = classification_splits(recipe.data, seed=recipe.seed, input_size=recipe.model.input_size,
                                 for_training=False)  # no augmentation: the cache's condition
    model = pose_tl_model(recipe, data, policy)
    uncached = epoch_seconds(model, data.datasets["train"], epochs)
    backbone = backbone_of(model)
    with dtype_policy(policy):
        cache = FrozenFeatureCache(model, backbone, {"train": data.datasets["train"]}, storage="memory",
                                   folder=folder, seed=recipe.seed, shuffle_buffer=recipe.data.shuffle_buffer,
                                   batch_size=BATCH, num_train=data.sizes["train"])
        started = time.perf_counter()
        head, train, _ = cache.phase_data(0)
        fill = time.perf_counter() - started
        from pose_tl.training.phases import compile_classifier

        compile_classifier(head, keras.optimizers.Adam(1e-3))
    cached = epoch_seconds(head, train, epochs)
    return data.sizes["train"], uncached, fill, cached


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)  # this machine drifts ~10 % within seconds
    parser.add_argument("--steps", type=int, default=12, help="timed training steps per repeat and variant")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cache-epochs", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="throughput_"))
    root = write_shapes_dataset(folder / "shapes", samples_per_class=64, image_size=(args.size, args.size), seed=1)
    policy = resolve_precision("auto")

    num_classes = len([p for p in root.iterdir() if p.is_dir()])
    baseline, baseline_data = plain_keras(root, args.size, num_classes)
    # the same plain code with the one line a Keras user adds for mixed precision: what pose_tl adds beyond it
    plain_mixed, plain_mixed_data = plain_keras(root, args.size, num_classes, policy)
    recipe = pose_tl_recipe(root, args.size, folder, unfreeze=("block4", "block5"))
    data = classification_splits(recipe.data, seed=recipe.seed, input_size=recipe.model.input_size)
    ours = pose_tl_model(recipe, data, policy)
    ours_data = data.datasets["train"].repeat()
    # the same pose_tl run with `train.kernels: keras`: what the fused update and matmul filter gradients add
    keras_kernels = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, kernels="keras"))
    ours_keras_kernels = pose_tl_model(keras_kernels, data, policy)
    from pose_tl.training.phases import training_kernels

    plain = contextlib.nullcontext
    runs = {"plain Keras (float32)": (baseline, baseline_data, plain),
            f"plain Keras ({policy})": (plain_mixed, plain_mixed_data, plain),
            f"pose_tl ({policy}, kernels: keras)": (
                ours_keras_kernels, ours_data, functools.partial(training_kernels, ours_keras_kernels,
                                                                 keras_kernels.train)),
            f"pose_tl ({policy})": (ours, ours_data, functools.partial(training_kernels, ours, recipe.train))}
    rates = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit every variant alike
        for name, (model, dataset, kernels) in runs.items():
            rates[name].append(images_per_second(model, dataset, args.steps, kernels))
    pipeline = [pipeline_images_per_second(ours_data, 4 * args.steps) for _ in range(args.repeats)]

    base_rate = statistics.median(rates["plain Keras (float32)"])
    our_rate = statistics.median(rates[f"pose_tl ({policy})"])
    print(f"\ntraining throughput, VGG16 depth {args.size}x{args.size}, blocks 1-3 frozen, batch {BATCH}, "
          f"{args.repeats} interleaved repeats x {args.steps} steps (median; all repeats in brackets)")
    print(f"{'variant':<44}{'img/s':>8}{'ratio':>8}  repeats")
    for name, values in rates.items():
        print(f"{name:<44}{statistics.median(values):>8.1f}{statistics.median(values) / base_rate:>8.2f}  "
              f"[{', '.join(f'{v:.1f}' for v in values)}]")
    pipe_rate = statistics.median(pipeline)
    print(f"{'pose_tl input pipeline alone':<44}{pipe_rate:>8.1f}{pipe_rate / our_rate:>8.2f}  "
          f"(x pose_tl training) [{', '.join(f'{v:.1f}' for v in pipeline)}]")
    print("targets: pose_tl >= 1.9x plain Keras; pipeline >= 3x what training consumes")

    frames, uncached, fill, cached = feature_cache_rows(root, args.size, folder, policy, args.cache_epochs)
    later_uncached, later_cached = statistics.median(uncached[1:]), statistics.median(cached[1:])
    print(f"\nhead-only phase, {frames} training frames, {args.cache_epochs} epochs each (seconds per epoch)")
    print(f"{'variant':<34}{'epoch 1':>9}{'later':>9}{'speed-up':>10}")
    print(f"{'backbone every epoch':<34}{uncached[0]:>9.2f}{later_uncached:>9.3f}{1.0:>10.1f}")
    print(f"{'feature cache (fill + epoch 1)':<34}{fill + cached[0]:>9.2f}{later_cached:>9.3f}"
          f"{later_uncached / later_cached:>10.1f}")
    print("target: >= 5x faster epochs after the first")


if __name__ == "__main__":
    main()
