"""Spreading training over devices and machines with `tf.distribute`, as `train.distribute` says.

`data.batch_size` is the global batch: Keras splits every batch evenly across the replicas. With `multi_worker`
every worker runs the same run; only the chief writes the output folder, the others write to a throwaway
temporary folder (the Keras multi-worker convention), so saving code stays the same on every worker.
"""

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from pose_tl.errors import OutputError, RecipeError

TF_CONFIG = "TF_CONFIG"
TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host0:port", "host1:port"]}, '
                     '"task": {"type": "worker", "index": 0}}')


def build_strategy(distribute, source):
    """The `tf.distribute` strategy for `train.distribute` (`source`: the recipe file, for errors).

    Build it before any other TensorFlow work: `multi_worker` configures the runtime, which must not have started.

    Raises:
        RecipeError: `multi_worker` without a usable `TF_CONFIG`.
    """
    if distribute == "none":
        return tf.distribute.get_strategy()
    if distribute == "mirrored":
        # the local devices named, or MirroredStrategy would read a TF_CONFIG the platform set and span the cluster
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[device.name for device in devices])
    check_tf_config(os.environ.get(TF_CONFIG), source)
    return KerasMultiWorkerMirroredStrategy()


class KerasMultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` hands it.

    Keras 3 reduces a whole `(x, y)` batch in one call, and per-replica scalars (the loss) along axis 0; the base
    class takes one tensor at a time, and an axis it has, so `fit` fails without this (keras-team/keras#20585,
    tensorflow/tensorflow#72388).
    """

    def reduce(self, reduce_op, value, axis=None):
        def reduce_one(tensor):
            scalar = self.experimental_local_results(tensor)[0].shape.rank == 0
            return super(KerasMultiWorkerMirroredStrategy, self).reduce(reduce_op, tensor, None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)


def check_tf_config(text, source):
    """Check that `TF_CONFIG` names a cluster of workers and this process's place in it.

    Without this, MultiWorkerMirroredStrategy quietly trains alone, which a cluster job would never notice.

    Raises:
        RecipeError: `TF_CONFIG` is unset, not JSON, or its task is not one of its cluster's tasks.
    """
    if not _is_cluster_and_task(text):
        raise RecipeError(source, "train.distribute",
                          f"multi_worker reads the cluster from the {TF_CONFIG} environment variable, JSON like "
                          f"{TF_CONFIG_EXAMPLE}", text)


def _is_cluster_and_task(text):
    try:
        config = json.loads(text or "null")
    except ValueError:
        return False
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        return False
    task = config.get("task")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str):
        return False
    tasks = config["cluster"].get(task["type"])
    index = task.get("index", 0)
    return isinstance(tasks, list) and isinstance(index, int) and 0 <= index < len(tasks)


def shard_by_element(datasets):
    """`datasets` (split -> tf.data or None) split across workers by element: each worker reads all of a split and
    keeps its replicas' share of every global batch.

    tf.data's default shards by file first, and fails when a split has fewer files than there are workers (a small
    TFDS split is one file).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return {split: None if dataset is None else dataset.with_options(options) for split, dataset in datasets.items()}


def check_global_batch(batch_size, strategy, source):
    """Each replica gets an equal share of the global batch, or the gradient average would weigh frames unevenly."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise RecipeError(source, "data.batch_size",
                          f"a multiple of the {replicas} replicas training in sync (it is the global batch)",
                          batch_size)


def is_chief(strategy):
    """True unless this is a multi-worker run and this process is not its chief.

    The chief is the `chief` task, or worker 0 when the cluster has no `chief` (TensorFlow's convention).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def describe(strategy, distribute):
    """One log line: the strategy, its replicas and, for a multi-worker run, which task this process is."""
    name = "default strategy" if distribute == "none" else type(strategy).__name__
    text = f"{name}, {strategy.num_replicas_in_sync} replica(s) (train.distribute: {distribute})"
    if distribute == "multi_worker":
        resolver = strategy.cluster_resolver
        role = "the chief" if is_chief(strategy) else "not the chief, so it writes a temporary folder"
        text += f"; this process is {resolver.task_type} {resolver.task_id}, {role}"
    return text


@contextlib.contextmanager
def worker_output_dir(strategy, out_dir, resume):
    """`out_dir` on the chief; on other workers a temporary folder, deleted afterwards.

    A resumed non-chief worker starts from a copy of the chief's resume state, so that all workers restore the
    same weights and epoch: the output folder must then be on storage every worker reads.

    Raises:
        OutputError: resuming on a worker that cannot see the chief's resume state.
    """
    if is_chief(strategy):
        yield out_dir
        return
    if not resume and (Path(out_dir) / "checkpoints").exists():
        # the chief refuses this folder; failing here too keeps this worker from waiting for it forever
        raise OutputError(f"{out_dir}: holds a previous run; pass --resume to continue it or --out for a new folder")
    scratch = Path(tempfile.mkdtemp(prefix="pose_tl_worker_"))
    try:
        if resume:
            _copy_resume_state(Path(out_dir), scratch)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _copy_resume_state(out_dir, scratch):
    resume_dir = out_dir / "checkpoints" / "resume"
    if not resume_dir.is_dir():
        raise OutputError(f"{out_dir}: no checkpoints/resume visible from this worker; resuming a multi_worker "
                          "run needs the output folder on storage every worker reads")
    shutil.copytree(resume_dir, scratch / "checkpoints" / "resume")
