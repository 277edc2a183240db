"""Served networks whose convolution and dense weights are stored in the precision they compute in.

Under a mixed policy Keras keeps each layer's weights in float32 and casts them to bfloat16 (or float16) at every
call, which is what training wants (updates accumulate in float32) and what serving does not: a served call casts
the whole VGG16 again. On the README's 2-core AMD EPYC (`mixed_bfloat16`, the demo run's pose network, input
96x128) the backbone alone took 26.9 ms at batch 1 with its weights cast per call and 24.3 ms with them stored in
bfloat16 (142.6 / 137.4 ms at batch 8), the same outputs to the last bit: the stored weights are the values the
cast would give. Normalisation layers keep their policy (their statistics stay float32: batch norm computes in
float32 under mixed policies), and so does every layer outside `STORED_LAYERS`.
"""

import keras

from pose_tl.training.precision import compute_policy, dtype_policy

# A mixed policy -> the policy computing alike with its weights stored in the compute dtype.
STORED_POLICIES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# Layers whose weights are all cast to the compute dtype where they are used (kernels and biases).
STORED_LAYERS = frozenset({"Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "Dense"})


def weights_in_compute_dtype(model):
    """A copy of `model` (nested models included, weights copied) whose `STORED_LAYERS` under a mixed policy store
    their weights in its compute dtype; `model` itself where none does. For inference only: a copy trained further
    would accumulate its updates in bfloat16."""
    changed = []

    def stored(node):
        if isinstance(node, list):
            return [stored(value) for value in node]
        if not isinstance(node, dict):
            return node
        node = {key: stored(value) for key, value in node.items()}
        policy = node.get("config", {}).get("dtype") if isinstance(node.get("config"), dict) else None
        if (node.get("class_name") in STORED_LAYERS and isinstance(policy, dict)
                and policy.get("class_name") == "DTypePolicy"
                and policy.get("config", {}).get("name") in STORED_POLICIES):
            changed.append(node["config"].get("name"))
            name = STORED_POLICIES[policy["config"]["name"]]
            node["config"] = {**node["config"], "dtype": {**policy, "config": {**policy["config"], "name": name}}}
        return node

    config = stored(keras.saving.serialize_keras_object(model))
    if not changed:
        return model
    # Sub-layers built without a dtype take the global policy: the one `model` was built or loaded under, its own.
    with dtype_policy(model.dtype_policy.name):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def compute_dtype(model):
    """The dtype `model`'s network computes in (`compute_policy`'s): the same for a mixed policy and the one storing
    its weights in that dtype."""
    return keras.DTypePolicy(compute_policy(model)).compute_dtype


def mixed_policy(policy):
    """The mixed policy computing as `policy` does ("bfloat16" -> "mixed_bfloat16"): what a copy of a model to train
    or to fold its batch norms in takes; other policies stay."""
    return {stored: mixed for mixed, stored in STORED_POLICIES.items()}.get(policy, policy)
