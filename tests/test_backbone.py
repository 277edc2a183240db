"""The depth VGG backbone: weight sources, the first-conv adapter, depth preprocessing and freezing."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from pose_tl.backbones import weights as weight_sources
from pose_tl.backbones.depth_adapter import adapt_first_conv_to_depth
from pose_tl.backbones.depth_preprocessing import (IMAGENET_CAFFE_MEAN_GREY, SHADING_FOCAL_PER_WIDTH,
                                                   DepthPreprocessing)
from pose_tl.backbones.freezing import set_trainable_layers
from pose_tl.backbones.layout import vgg_layer_names
from pose_tl.backbones.vgg import build_vgg_backbone
from pose_tl.config.schema import BackboneConfig, FreezeConfig
from pose_tl.config.validation import frozen_layer_names
from pose_tl.errors import WeightsError


@pytest.fixture(scope="module")
def hed_file():
    return weight_sources.hed_weights_path()


def test_hed_weights_are_copied_layer_by_layer(hed_file):
    model = build_vgg_backbone("vgg16", weights="hed-bsds500", depth_adapter="sum", input_shape=(32, 32, 1))
    with h5py.File(hed_file, "r") as f:
        kernel = f["block3/layers/conv2d_1/vars/0"][()]
        bias = f["block5/layers/conv2d_2/vars/1"][()]
        first = f["block1/layers/conv2d/vars/0"][()]
    np.testing.assert_array_equal(model.get_layer("block3_conv2").kernel.numpy(), kernel)
    np.testing.assert_array_equal(model.get_layer("block5_conv3").bias.numpy(), bias)
    np.testing.assert_allclose(model.get_layer("block1_conv1").kernel.numpy(), first.sum(axis=2, keepdims=True),
                               rtol=1e-6)


def test_sum_adapter_equals_rgb_network_on_replicated_depth():
    depth_net = build_vgg_backbone("vgg16", weights="hed-bsds500", depth_adapter="sum", input_shape=(48, 48, 1))
    rgb_net = build_vgg_backbone("vgg16", weights="hed-bsds500", input_shape=(48, 48, 3))
    rng = np.random.default_rng(0)
    depth = rng.uniform(-120, 140, size=(2, 48, 48, 1)).astype(np.float32)
    ours = depth_net(depth).numpy()
    reference = rgb_net(np.repeat(depth, 3, axis=-1)).numpy()
    assert np.abs(reference).max() > 1.0  # a real, non-trivial activation
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3 * np.abs(reference).max())


def test_mean_adapter_is_a_third_of_sum():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(adapt_first_conv_to_depth(kernel, "mean") * 3, adapt_first_conv_to_depth(kernel, "sum"),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="mode"):
        adapt_first_conv_to_depth(kernel, "max")


def test_weights_that_do_not_fit_raise(tmp_path):
    bad = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save_weights(bad)
    with pytest.raises(WeightsError, match="do not fit vgg16"):
        build_vgg_backbone("vgg16", weights=str(bad))


def test_local_weights_file_round_trips(tmp_path):
    source = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "vgg16_notop.weights.h5"
    source.save_weights(path)
    model = build_vgg_backbone("vgg16", weights=str(path), input_shape=(32, 32, 1))
    np.testing.assert_array_equal(model.get_layer("block4_conv1").kernel.numpy(),
                                  source.get_layer("block4_conv1").kernel.numpy())


def test_hed_refuses_vgg19():
    with pytest.raises(WeightsError, match="VGG16"):
        weight_sources.hed_weights("vgg19")


def test_imagenet_offline_names_the_alternatives(monkeypatch):
    def offline(**kwargs):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- unreachable")

    monkeypatch.setitem(weight_sources.APPLICATIONS, "vgg16", offline)
    with pytest.raises(WeightsError, match="hed-bsds500"):
        weight_sources.imagenet_weights("vgg16")


def test_depth_preprocessing_maps_range_and_invalid_pixels():
    layer = DepthPreprocessing(min_m=0.5, max_m=4.5)
    depth = np.array([0.5, 4.5, 2.5, 0.1, 9.0, 0.0, -1.0, np.nan, np.inf], np.float32).reshape(1, 1, 9, 1)
    out = layer(depth).numpy().ravel()
    expected_valid = np.array([255.0, 0.0, 127.5, 255.0, 0.0]) - IMAGENET_CAFFE_MEAN_GREY
    np.testing.assert_allclose(out[:5], expected_valid, rtol=1e-5)
    np.testing.assert_array_equal(out[5:], 0.0)
    millimetres = tf.constant([[[[500], [4500], [2500], [0]]]], tf.uint16)
    np.testing.assert_allclose(layer(millimetres).numpy().ravel(), [*expected_valid[:3], 0.0], rtol=1e-5)


def test_shaded_encoding_darkens_by_the_surface_angle_to_the_camera():
    width = 64
    grey, shaded = (DepthPreprocessing(min_m=0.5, max_m=6.0, encoding=e) for e in ("grey", "shaded"))
    facing = np.full((1, 16, width, 1), 2.0, np.float32)  # a wall square to the optical axis
    np.testing.assert_allclose(shaded(facing).numpy(), grey(facing).numpy(), rtol=1e-5)
    # A plane turned 60 degrees about the vertical axis, seen on the optical axis: there dz/du = tan(60) * z / f,
    # so its cosine is 0.5 (off the axis the viewing ray turns with the pixel and the estimate drifts).
    focal = SHADING_FOCAL_PER_WIDTH * width
    u = np.arange(width, dtype=np.float32) - width / 2
    tilted = np.tile((2.0 * focal / (focal - np.tan(np.radians(60)) * u))[None, :], (16, 1))[None, ..., None]
    centre = np.s_[0, 4:-4, width // 2 - 1:width // 2 + 1, 0]
    lit = (shaded(tilted).numpy()[centre] + IMAGENET_CAFFE_MEAN_GREY) / (grey(tilted).numpy()[centre] +
                                                                          IMAGENET_CAFFE_MEAN_GREY)
    np.testing.assert_allclose(lit, 0.5, atol=0.03)
    # A depth step (a silhouette) renders dark; holes stay exactly 0 and draw no edge around them.
    step = facing.copy()
    step[:, :, width // 2:] = 4.0
    step_lit = shaded(step).numpy()[0, 8, :, 0] + IMAGENET_CAFFE_MEAN_GREY
    assert step_lit[width // 2] < 0.1 * step_lit[4]
    holed = facing.copy()
    holed[:, 8, 20] = 0.0
    out = shaded(holed).numpy()
    assert out[0, 8, 20, 0] == 0.0
    np.testing.assert_allclose(out[0, 7:10, 18:23, 0][out[0, 7:10, 18:23, 0] != 0], grey(facing).numpy()[0, 0, 0, 0],
                               rtol=1e-4)
    assert DepthPreprocessing.from_config(shaded.get_config()).encoding == "shaded"
    with pytest.raises(ValueError, match="encoding"):
        DepthPreprocessing(encoding="jet")


def test_freeze_up_to_and_phase_unfreeze():
    backbone = build_vgg_backbone("vgg16", weights="none", input_shape=(32, 32, 1))
    config = BackboneConfig(weights="none", freeze=FreezeConfig(up_to="block3_pool"))
    frozen = frozen_layer_names(config)
    assert frozen[-1] == "block3_pool" and "block4_conv1" not in frozen
    assert set_trainable_layers(backbone, frozen_layers=frozen, unfreeze=[]) == []
    trained = set_trainable_layers(backbone, frozen_layers=frozen, unfreeze=["all"])
    assert trained == [n for n in vgg_layer_names("vgg16") if n.startswith(("block4", "block5")) and "conv" in n]
    learned = set_trainable_layers(backbone, frozen_layers=frozen, unfreeze=[], learned_adapter=True)
    assert learned == ["block1_conv1"]
    assert len(backbone.trainable_weights) == 2


def test_freeze_blocks_counts_leading_blocks():
    config = BackboneConfig(name="vgg19", weights="none", freeze=FreezeConfig(up_to=None, blocks=2))
    assert frozen_layer_names(config) == vgg_layer_names("vgg19")[:6]


def test_vgg19_layout_matches_keras():
    model = build_vgg_backbone("vgg19", weights="none", input_shape=(32, 32, 1))
    assert [layer.name for layer in model.layers[1:]] == vgg_layer_names("vgg19")
