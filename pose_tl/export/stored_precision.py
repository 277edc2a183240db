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
import tensorflow as tf

from pose_tl.training.precision import compute_policy, copy_with_policies

# A mixed policy -> the policy computing alike with its weights stored in the compute dtype.
STORED_POLICIES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
# Layers whose weights are all cast to the compute dtype where they are used (kernels and biases), and the pose head,
# whose convolutions follow its policy while its batch norms keep float32 statistics (`pose_tl.heads.pose`).
STORED_LAYERS = frozenset({"Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "Dense", "PoseHead"})


def weights_in_compute_dtype(model):
    """A copy of `model` (nested models included, weights copied) whose `STORED_LAYERS` under a mixed policy store
    their weights in its compute dtype; `model` itself where none does. For inference only: a copy trained further
    would accumulate its updates in bfloat16. Sub-layers built without a dtype take the policy `model` was built or
    loaded under, its own, as they did.

    Inside a distribution strategy's scope (a run's export at its end) `model` itself: the copy's variables would be
    the strategy's, and MultiWorkerMirroredStrategy's collectives refuse bfloat16 ones ("Value for attr 'T' of
    bfloat16 is not in the list of allowed values"); `pose-tl export` of its checkpoint stores them."""
    if tf.distribute.has_strategy():
        return model

    def policy_of(layer_class, name):
        return STORED_POLICIES.get(name, name) if layer_class in STORED_LAYERS else name

    return copy_with_policies(model, policy_of, global_policy=model.dtype_policy.name)


def compute_dtype(model):
    """The dtype `model`'s network computes in (`compute_policy`'s): the same for a mixed policy and the one storing
    its weights in that dtype."""
    return keras.DTypePolicy(compute_policy(model)).compute_dtype


def mixed_policy(policy):
    """The mixed policy computing as `policy` does ("bfloat16" -> "mixed_bfloat16"): what a copy of a model to train
    or to fold its batch norms in takes; other policies stay."""
    return {stored: mixed for mixed, stored in STORED_POLICIES.items()}.get(policy, policy)
