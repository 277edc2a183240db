"""A killed run resumes without losing more than an epoch; a killed export leaves the old model or nothing;
non-finite losses stop with a message; the same seed gives the same metrics."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import invoke, tiny_recipe_dict, write_recipe

POSE_TL = [sys.executable, "-m", "pose_tl.cli.main"]


def wait_for(condition, timeout=120.0, poll=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def epochs_done(out):
    state = out / "checkpoints/resume/state.json"
    try:
        return json.loads(state.read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return 0


def test_kill_9_then_resume_ends_at_the_same_epoch_count(shapes_root, tmp_path):
    epochs = 40
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(
        shapes_root, train__phases=[{"name": "head", "epochs": epochs}], train__export_at_end=False))
    out = tmp_path / "run"
    proc = subprocess.Popen([*POSE_TL, "train", str(recipe), "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: epochs_done(out) >= 2), "training never completed an epoch"
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    done_when_killed = epochs_done(out)
    assert 2 <= done_when_killed < epochs
    resumed = subprocess.run([*POSE_TL, "train", str(recipe), "--out", str(out), "--resume"], capture_output=True,
                             text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = (out / "logs/0_head.csv").read_text().strip().splitlines()[1:]
    logged = sorted({int(row.split(",")[0]) for row in rows})
    assert logged == list(range(epochs))  # every epoch once, ending at the uninterrupted count
    assert epochs_done(out) == epochs
    history = json.loads((out / "logs/history.json").read_text())
    assert len(history[0]["history"]["loss"]) == epochs - done_when_killed  # at most the interrupted epoch redone


def test_a_log_row_cut_off_by_a_kill_is_written_back_on_resume(tmp_path):
    """Killed after the resume state of epoch 1 was saved but before its CSV row: the resume writes the row."""
    from pose_tl.training.resume import restore_missing_log_row

    log = tmp_path / "logs" / "0_head.csv"
    log.parent.mkdir()
    log.write_text("epoch,accuracy,loss\r\n0,0.5,1.25\r\n")
    restore_missing_log_row(log, 1, {"loss": 0.75, "accuracy": 0.625})
    restore_missing_log_row(log, 1, {"loss": 0.75, "accuracy": 0.625})  # present now: not written twice
    assert log.read_text().splitlines() == ["epoch,accuracy,loss", "0,0.5,1.25", "1,0.625,0.75"]
    fresh = tmp_path / "logs" / "1_finetune.csv"
    restore_missing_log_row(fresh, 0, {"loss": 2.0})  # killed before the phase's first row
    assert fresh.read_text().splitlines() == ["epoch,loss", "0,2.0"]


def test_killed_export_leaves_the_previous_model_or_nothing(trained_run, tiny_recipe, tmp_path):
    out, _ = trained_run
    destination = tmp_path / "exported"
    first = invoke("export", tiny_recipe, "--checkpoint", out / "checkpoints/final.keras", "--out", destination)
    assert first.exit_code == 0, first.output
    before = (destination / "saved_model.pb").read_bytes()
    proc = subprocess.Popen([*POSE_TL, "export", str(tiny_recipe), "--checkpoint", str(out / "checkpoints/final.keras"),
                             "--out", str(destination)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    temporary = lambda: [p for p in tmp_path.iterdir() if p.name.startswith(".exported.")]  # noqa: E731
    started = wait_for(lambda: any(p.is_dir() for p in temporary()), timeout=120, poll=0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert started, "the export never began writing"
    if destination.exists():
        assert (destination / "saved_model.pb").read_bytes() == before
        import tensorflow as tf

        assert "serving_default" in tf.saved_model.load(str(destination)).signatures
    # a later export cleans up and succeeds
    again = invoke("export", tiny_recipe, "--checkpoint", out / "checkpoints/final.keras", "--out", destination)
    assert again.exit_code == 0 and (destination / "saved_model.pb").is_file()


def test_nan_loss_stops_with_step_and_learning_rate(shapes_root, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(
        shapes_root, train__phases=[{"name": "head", "epochs": 3, "learning_rate": 10.0}],
        train__optimizer="sgd", train__precision="float32"))
    result = invoke("train", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 2, result.output
    message = result.output.strip().splitlines()[-1]
    assert "loss became" in message and "step" in message and "learning rate 10" in message
    assert "train.phases[0].learning_rate" in message and "Traceback" not in result.output


def test_gradient_clipping_keeps_the_same_run_finite(shapes_root, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(
        shapes_root, train__phases=[{"name": "head", "epochs": 1, "learning_rate": 10.0}],
        train__optimizer="sgd", train__clip_gradient_norm=0.001, train__precision="float32"))
    result = invoke("train", recipe, "--out", tmp_path / "run", "--no-export")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("precision", ["float32"])
def test_same_seed_same_metrics(shapes_root, tmp_path, precision):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(shapes_root, train__precision=precision))
    histories = []
    for name in ("a", "b"):
        result = invoke("train", recipe, "--out", tmp_path / name, "--no-export")
        assert result.exit_code == 0, result.output
        histories.append(json.loads((tmp_path / name / "logs/history.json").read_text()))
        histories[-1].append(json.loads((tmp_path / name / "eval/metrics.json").read_text()))
    assert histories[0] == histories[1]
