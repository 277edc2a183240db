"""Per-epoch resume state: model weights and progress, written atomically after every completed epoch."""

import csv
import json
from pathlib import Path

import keras

from pose_tl.atomic import atomic_path, write_json_atomic
from pose_tl.training.divergence import finite_loss

STATE_FILE = "state.json"


class ResumeState:
    """Where a run stands: `phase_index` and the epochs completed in that phase, plus the weights file."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def load(self):
        path = self.folder / STATE_FILE
        if not path.is_file():
            return None
        return json.loads(path.read_text())

    def save(self, model, phase_index, epochs_done, logs=None):
        """`logs`: the metrics of the epoch just done, kept so a resume can write a CSV row that a kill cut off."""
        weights_name = f"phase{phase_index}_epoch{epochs_done}.weights.h5"
        with atomic_path(self.folder / weights_name) as tmp:
            model.save_weights(str(tmp))
        previous = self.load()
        record = {"phase_index": phase_index, "epochs_done": epochs_done, "weights": weights_name}
        if logs:
            record["last_epoch_logs"] = {name: _number(value) for name, value in logs.items()}
        write_json_atomic(self.folder / STATE_FILE, record)
        if previous and previous["weights"] != weights_name:
            (self.folder / previous["weights"]).unlink(missing_ok=True)

    def restore_weights(self, model, state):
        model.load_weights(str(self.folder / state["weights"]))


class SaveResumeState(keras.callbacks.Callback):
    """Saves `ResumeState` at the end of each epoch of one phase."""

    def __init__(self, state, phase_index, whole_model=None):
        super().__init__()
        self.state = state
        self.phase_index = phase_index
        self.whole_model = whole_model  # the full model when the phase fits only its head (feature cache)

    def on_epoch_end(self, epoch, logs=None):
        if finite_loss(logs):
            self.state.save(self.whole_model or self.model, self.phase_index, epoch + 1, logs)


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def restore_missing_log_row(csv_path, epoch, logs):
    """Write `epoch`'s row into a phase's CSV log if a kill fell between the resume state's save and the row.

    The state is saved first, so a logged epoch is always resumable; the converse window is closed here, from the
    metrics the state kept, so the log holds every epoch once.
    """
    csv_path = Path(csv_path)
    if not logs or epoch < 0:
        return
    lines = csv_path.read_text().splitlines() if csv_path.is_file() else []
    header = lines[0].split(",") if lines else ["epoch", *sorted(logs)]
    if any(line.split(",")[0] == str(epoch) for line in lines[1:]):
        return
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with csv_path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if not lines:
            writer.writerow(header)
        writer.writerow([epoch] + [logs.get(name, "NA") for name in header[1:]])


class SaveBestModel(keras.callbacks.Callback):
    """Keeps `path` (a .keras file) the model with the lowest `monitor` seen so far, across phases."""

    def __init__(self, path, monitor="val_loss"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = float("inf")
        self.whole_model = None  # set per phase: the full model when the phase fits only its head

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not finite_loss(logs) or not value < self.best:
            return
        self.best = float(value)
        with atomic_path(self.path) as tmp:
            (self.whole_model or self.model).save(str(tmp))
