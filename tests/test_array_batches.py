"""`shuffled_batches`: the joint refiner's feed of in-memory crops and target maps to `Model.fit`."""

import numpy as np
import pytest

from pose_tl.training.array_batches import array_gather, shuffled_batches


def epoch(inputs, targets, batch_size, seed):
    return [(x.numpy(), {k: v.numpy() for k, v in y.items()} if isinstance(y, dict) else y.numpy())
            for x, y in shuffled_batches(array_gather(inputs, targets), len(inputs), batch_size,
                                        np.random.default_rng(seed))]


def test_every_example_comes_once_with_its_own_targets():
    inputs = np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 3, 2), np.float32)
    targets = {"maps": np.arange(10, dtype=np.float32)[:, None] * 10.0, "ids": np.arange(10, dtype=np.int32)}
    batches = epoch(inputs, targets, 4, seed=0)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    ids = np.concatenate([y["ids"] for _, y in batches])
    assert sorted(ids.tolist()) == list(range(10))
    for x, y in batches:
        assert x.dtype == np.float32 and x.shape[1:] == (3, 2)
        np.testing.assert_array_equal(x[:, 0, 0], y["ids"])
        np.testing.assert_array_equal(y["maps"][:, 0], y["ids"] * 10.0)


def test_the_order_is_the_generators():
    inputs = np.arange(64, dtype=np.float32)[:, None]
    targets = np.arange(64, dtype=np.float32)[:, None]

    def order(seed):
        return np.concatenate([x[:, 0] for x, _ in epoch(inputs, targets, 8, seed)]).tolist()

    assert order(3) == order(3)
    assert order(3) != order(4)
    assert order(3) != sorted(order(3))  # shuffled across batches, not only within them


def test_targets_of_another_length_are_refused():
    with pytest.raises(ValueError, match="must hold 5 examples"):
        array_gather(np.zeros((5, 2)), {"maps": np.zeros((4, 2))})
    with pytest.raises(ValueError, match="must hold 2 examples"):
        shuffled_batches(lambda index: (np.zeros((len(index), 2)), np.zeros((1, 2))), 5, 2, np.random.default_rng(0))


def test_a_model_fits_on_them():
    import keras

    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(256, 4)).astype(np.float32)
    targets = inputs @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    first = model.evaluate(inputs, targets, verbose=0)
    batches = shuffled_batches(array_gather(inputs, targets), 256, 32, rng)
    model.fit(batches, epochs=20, verbose=0)  # one dataset, every epoch
    assert model.evaluate(inputs, targets, verbose=0) < 0.01 * first


def test_fit_knows_an_epochs_steps(recwarn):
    import keras

    inputs = np.zeros((10, 2), np.float32)
    batches = shuffled_batches(array_gather(inputs, np.zeros((10, 1), np.float32)), 10, 4,
                               np.random.default_rng(0))
    assert int(batches.cardinality()) == 3
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(batches, epochs=2, verbose=0)
    assert not [w for w in recwarn if "ran out of data" in str(w.message)]


def test_batches_start_no_autotuning_thread():
    """Deleting an iterator waits for tf.data's tuning thread (`pose_tl.data.prefetching`); the refiner deletes one
    an epoch."""
    inputs = np.zeros((6, 1), np.float32)
    batches = shuffled_batches(array_gather(inputs, inputs), 6, 4, np.random.default_rng(0))
    assert batches.options().autotune.enabled is False


def test_each_pass_gathers_what_the_arrays_hold_then():
    inputs, targets = np.zeros((6, 1), np.float32), np.zeros((6, 1), np.float32)
    batches = shuffled_batches(array_gather(inputs, targets), 6, 4, np.random.default_rng(0))
    assert sorted(np.concatenate([x[:, 0] for x, _ in batches]).tolist()) == [0.0] * 6
    inputs[:] = np.arange(6)[:, None]  # changed in place between passes, as the refiner's shaken copies are
    assert sorted(np.concatenate([x[:, 0] for x, _ in batches]).tolist()) == list(range(6))


def test_a_batch_of_other_shapes_is_refused():
    def gather(index):
        return np.zeros((len(index), 3 if index[0] else 2), np.float32), np.zeros((len(index), 1), np.float32)

    import tensorflow as tf

    batches = shuffled_batches(gather, 8, 4, np.random.default_rng(0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="yielded an element of shape"):
        list(batches)
