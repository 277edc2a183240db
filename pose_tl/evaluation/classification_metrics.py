"""Accuracy, per-class precision / recall / F1 and the confusion matrix, from true and predicted class ids."""

import numpy as np


def confusion_matrix(y_true, y_pred, num_classes):
    """Rows: true class; columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_report(y_true, y_pred, class_names):
    """A JSON-able dict: accuracy, per-class precision/recall/f1/support, macro averages, confusion matrix."""
    matrix = confusion_matrix(y_true, y_pred, len(class_names))
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positives), where=denominator > 0)
    per_class = {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                        "support": int(actual[i])} for i, name in enumerate(class_names)}
    total = int(matrix.sum())
    return {
        "num_samples": total,
        "accuracy": float(true_positives.sum() / total) if total else 0.0,
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
    }


def format_report(report):
    """The report as a fixed-width text table followed by the confusion matrix."""
    names = report["class_names"]
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"samples: {report['num_samples']}   accuracy: {report['accuracy']:.4f}   "
             f"macro F1: {report['macro_f1']:.4f}", "",
             f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name in names:
        row = report["per_class"][name]
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1']:>10.4f}"
                     f"{row['support']:>10d}")
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "".join(f"{n[:9]:>10}" for n in names)]
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>10d}" for v in row))
    return "\n".join(lines) + "\n"
