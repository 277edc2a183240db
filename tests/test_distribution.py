"""train.distribute: mirrored over two CPU devices, two multi-worker processes on localhost, TF_CONFIG errors.

Distributed runs go in fresh Python processes: logical devices and the multi-worker runtime must be set up before
TensorFlow starts, which in the test process it already has.
"""

import csv
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf

from conftest import assert_one_line_error, invoke, tiny_pose_recipe_dict, tiny_recipe_dict, write_recipe
from pose_tl.errors import OutputError, RecipeError
from pose_tl.training.distribution import check_global_batch, is_chief, worker_output_dir

RUN_CLI = "from pose_tl.cli.main import main; main()"
TWO_CPU_DEVICES = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
""" + RUN_CLI
TIMEOUT_S = 300


def cli_process(code, args, cwd, tf_config=None):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(*processes):
    """(exit code, output) of each process. Past the timeout, or once one has failed, the rest are killed: a
    worker whose peer is gone would wait for it forever."""
    deadline = time.monotonic() + TIMEOUT_S
    results = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        results.append((process.returncode, output))
        if process.returncode:
            deadline = 0
    return results


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def epoch_rows(csv_path):
    with open(csv_path) as f:
        return list(csv.DictReader(f))


def test_mirrored_trains_on_two_cpu_devices(shapes_root, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(shapes_root, train__distribute="mirrored"))
    [(code, output)] = finish(cli_process(TWO_CPU_DEVICES, ["train", recipe, "--out", tmp_path / "run"], tmp_path))
    assert code == 0, output[-3000:]
    assert "distribute: MirroredStrategy, 2 replica(s)" in output
    for name in ("checkpoints/final.keras", "eval/metrics.json", "saved_model/saved_model.pb"):
        assert (tmp_path / "run" / name).exists(), name
    assert len(epoch_rows(tmp_path / "run" / "logs" / "0_head.csv")) == 1


def test_mirrored_pose_run_trains_its_facing_classifier_too(tmp_path):
    """The pose task on two CPU replicas, facing classifier included (it is trained in the run's strategy scope)."""
    recipe = write_recipe(tmp_path / "pose.yaml", tiny_pose_recipe_dict(
        tmp_path, model__pose__stages=1, train__phases=[{"name": "head", "epochs": 1}], train__distribute="mirrored",
        model__pose__refiner_facing=False))  # the classifier is served only where the refiner does not answer facing
    [(code, output)] = finish(cli_process(TWO_CPU_DEVICES, ["train", recipe, "--out", tmp_path / "run"], tmp_path))
    assert code == 0, output[-3000:]
    assert "distribute: MirroredStrategy, 2 replica(s)" in output and "facing classifier:" in output
    for name in ("checkpoints/final.keras", "checkpoints/facing.keras", "eval/metrics.json",
                 "saved_model/saved_model.pb"):
        assert (tmp_path / "run" / name).exists(), name
    assert json.loads((tmp_path / "run" / "saved_model" / "pose_tl.json").read_text())["facing_classifier"] is True


def test_two_workers_train_in_sync_and_only_the_chief_writes(shapes_root, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(shapes_root, train__distribute="multi_worker"))
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    out = tmp_path / "run"
    workers = [cli_process(RUN_CLI, ["train", recipe, "--out", out], tmp_path,
                           {"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in (0, 1)]
    (chief_code, chief), (other_code, other) = finish(*workers)
    assert chief_code == 0, chief[-3000:]
    assert other_code == 0, other[-3000:]
    assert "2 replica(s)" in chief and "this process is worker 0, the chief" in chief
    assert "this process is worker 1, not the chief" in other
    val_losses = re.findall(r"val_loss: ([\d.]+)", chief)
    assert val_losses and val_losses == re.findall(r"val_loss: ([\d.]+)", other)  # the same weights throughout
    for name in ("checkpoints/final.keras", "eval/metrics.json", "saved_model/saved_model.pb"):
        assert (out / name).exists(), name
    for phase_log in ("0_head.csv", "1_finetune.csv"):
        assert len(epoch_rows(out / "logs" / phase_log)) == 1  # two writers would have appended two rows
    scratch = Path(re.search(r"run folder:\s+(\S+)", other).group(1))
    assert scratch != out and not scratch.exists()


@pytest.mark.parametrize("tf_config", [None, "{not json", '{"cluster": {"worker": ["localhost:1"]}}',
                                       '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", '
                                       '"index": 3}}'])
def test_multi_worker_without_a_usable_tf_config_is_one_line(tiny_recipe, tmp_path, monkeypatch, tf_config):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    result = invoke("train", tiny_recipe, "--set", "train.distribute=multi_worker", "--out", tmp_path / "run")
    assert_one_line_error(result, "train.distribute", "TF_CONFIG", '"cluster"')
    assert not (tmp_path / "run").exists()


def test_global_batch_must_split_evenly_across_replicas():
    check_global_batch(8, SimpleNamespace(num_replicas_in_sync=4), "r.yaml")
    with pytest.raises(RecipeError, match=r"r.yaml: data.batch_size: a multiple of the 2 replicas.*received 5"):
        check_global_batch(5, SimpleNamespace(num_replicas_in_sync=2), "r.yaml")


def strategy_of_task(jobs, task_type, task_id):
    """A stand-in strategy: `is_chief` and `worker_output_dir` read only its cluster resolver."""
    cluster = tf.train.ClusterSpec({job: [f"localhost:{2000 + i}" for i in range(n)] for job, n in jobs.items()})
    return SimpleNamespace(cluster_resolver=tf.distribute.cluster_resolver.SimpleClusterResolver(
        cluster, task_type=task_type, task_id=task_id))


@pytest.mark.parametrize("jobs, task_type, task_id, chief", [
    ({"chief": 1, "worker": 2}, "chief", 0, True),
    ({"chief": 1, "worker": 2}, "worker", 0, False),
    ({"worker": 2}, "worker", 0, True),
    ({"worker": 2}, "worker", 1, False),
])
def test_the_chief_is_the_chief_task_or_else_worker_0(jobs, task_type, task_id, chief):
    assert is_chief(strategy_of_task(jobs, task_type, task_id)) is chief
    assert is_chief(tf.distribute.get_strategy())


def test_other_workers_write_a_scratch_folder_that_starts_from_the_chiefs_resume_state(tmp_path):
    out = tmp_path / "run"
    with worker_output_dir(strategy_of_task({"worker": 2}, "worker", 0), out, resume=False) as folder:
        assert folder == out
    with pytest.raises(OutputError, match="storage every worker reads"):
        with worker_output_dir(strategy_of_task({"worker": 2}, "worker", 1), out, resume=True):
            pass
    (out / "checkpoints" / "resume").mkdir(parents=True)
    (out / "checkpoints" / "resume" / "state.json").write_text("{}")
    with worker_output_dir(strategy_of_task({"worker": 2}, "worker", 1), out, resume=True) as folder:
        assert folder != out and (folder / "checkpoints" / "resume" / "state.json").read_text() == "{}"
    assert not folder.exists()


def test_other_workers_refuse_a_previous_run_as_the_chief_does(tmp_path):
    """Otherwise the chief stops with the error and the other workers wait for it at the first step forever."""
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    with pytest.raises(OutputError, match="holds a previous run"):
        with worker_output_dir(strategy_of_task({"worker": 2}, "worker", 1), out, resume=False):
            pass
