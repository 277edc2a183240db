"""Benchmark: the VGG16 backbone's achieved GFLOP/s and its share of this machine's measured matmul peak.

FLOPs are counted analytically, 2 * H_out * W_out * C_in * C_out * k_h * k_w per convolution (multiply and add;
pooling and ReLU are under 0.1 % and left out), at the model's input size. The peak is the fastest square
`tf.matmul` over a few sizes, in float32 and in bfloat16: the most a dense kernel reaches here. The backbone's share
is taken of the peak of its own compute precision (mixed_bfloat16 multiplies in bfloat16). Times are the fastest of
the repeats, for both: a roofline asks what the hardware can do, and on a shared machine the median measures the
neighbours.

    .venv/bin/python benchmarks/roofline.py [--input-size 96 128] [--matmul-sizes 1024 2048 4096] [--repeats 10]
"""

import argparse
import os

from inference import BATCHES, backbone_runner, build_classifier, time_ms


def conv_flops_per_image(backbone, input_size):
    """Multiply-adds x 2 of every Conv2D in `backbone` for one frame of `input_size`, following the shapes."""
    import keras

    shape, flops = (1, *input_size, 1), 0
    for layer in backbone.layers[1:]:
        output_shape = layer.compute_output_shape(shape)
        if isinstance(layer, keras.layers.Conv2D):
            k_h, k_w = layer.kernel_size
            flops += 2 * output_shape[1] * output_shape[2] * shape[-1] * layer.filters * k_h * k_w
        shape = output_shape
    return flops


def matmul_gflops(size, dtype, warmup, repeats):
    """Measured GFLOP/s of a [size, size] x [size, size] matmul in `dtype`."""
    import tensorflow as tf

    a = tf.random.normal([size, size], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(tf.transpose(a), dtype)
    matmul = tf.function(lambda: tf.matmul(a, b), autograph=False)
    return 2 * size ** 3 / time_ms(lambda: matmul().numpy(), warmup, repeats, reduce=min) / 1e6


def measured_peak(dtype, sizes, warmup, repeats):
    """(GFLOP/s, size) of the fastest matmul over `sizes`: the kernel's best tile fit varies with the size."""
    return max((matmul_gflops(size, dtype, warmup, repeats), size) for size in sizes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, nargs=2, default=[96, 128])
    parser.add_argument("--matmul-sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    import numpy as np

    from pose_tl.models.classifier import backbone_of
    from pose_tl.training.precision import resolve_precision

    peaks = {dtype: measured_peak(dtype, args.matmul_sizes, args.warmup, args.repeats)
             for dtype in ("float32", "bfloat16")}
    policies = dict.fromkeys([resolve_precision("auto"), "float32"])
    rows = []
    for policy in policies:
        model = build_classifier(args.input_size, policy)
        run = backbone_runner(model)
        flops = conv_flops_per_image(backbone_of(model), args.input_size)
        for batch in BATCHES:
            frames = np.random.default_rng(0).normal(size=(batch, *args.input_size, 1)).astype(np.float32)
            ms = time_ms(lambda: run(frames), args.warmup, args.repeats, reduce=min)
            compute_dtype = "bfloat16" if "bfloat16" in policy else "float32"
            rows.append((f"vgg16 backbone b{batch}", policy, flops * batch / 1e9, ms, flops * batch / ms / 1e6,
                         compute_dtype))
    print(f"\nroofline, {os.cpu_count()} CPU cores, VGG16 conv stack at {args.input_size[0]}x{args.input_size[1]}, "
          f"fastest of {args.repeats}")
    print(f"{'what':<22}{'precision':<16}{'GFLOP':>8}{'ms':>10}{'GFLOP/s':>10}{'% of peak':>11}")
    for dtype, (gflops, n) in peaks.items():
        gflop = 2 * n ** 3 / 1e9
        print(f"{f'matmul {n}^3 (peak)':<22}{dtype:<16}{gflop:>8.2f}{gflop / gflops * 1e3:>10.1f}{gflops:>10.1f}"
              f"{100.0:>10.1f}%")
    for name, policy, gflop, ms, gflops, compute_dtype in rows:
        share = 100.0 * gflops / peaks[compute_dtype][0]
        print(f"{name:<22}{policy:<16}{gflop:>8.2f}{ms:>10.1f}{gflops:>10.1f}{share:>10.1f}%")
    if any(gflops > peaks[compute_dtype][0] for *_, gflops, compute_dtype in rows):
        print("above 100 %: oneDNN's convolution beat the matmul probe, so the probe is a lower bound of the peak")


if __name__ == "__main__":
    main()
