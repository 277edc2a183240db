"""Pose metrics: PCK@0.2 (2D), mAP@10 cm (3D, the ITOP convention), MPJPE, and OKS-based AP via pycocotools.

Predicted people are matched one-to-one to ground-truth people per frame, greedily by mean 2D distance over the
ground truth's labelled joints (most confident prediction first). An unmatched ground-truth person counts as missed
in PCK and mAP; MPJPE averages over matched joints only.

`swapped@0.2` is a diagnostic, not a score: the share of labelled left/right joints (whose mirror joint is labelled
too) that miss their own label but hit the mirror joint's (within the PCK distance), i.e. a person seen from the
front taken as seen from the back.
Depth silhouettes carry few front/back cues, so this is where a depth pose model's errors tend to gather.
It counts two different errors alike, which `twin_pairs` tells apart over the left/right pairs of matched people
(both joints labelled and found, their labels more than twice the PCK distance apart): `turned`, both joints on each
other's labels (the person taken as seen from the back), and `collapsed`, both on one label (the two twins put on one
limb, the other limb left without a joint); shares of those pairs.
"""

import contextlib
import io

import numpy as np

from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, JOINT_NAMES, LIMBS

PCK_FRACTION = 0.2  # of the torso size (neck to hip centre, 2D)
DISTANCE_3D_M = 0.10  # ITOP's 10 cm
MIRROR = np.array(FLIP_INDEX)
SIDED = MIRROR != np.arange(len(JOINT_NAMES))  # joints with a left / right counterpart
TWIN_PAIRS = [(j, int(MIRROR[j])) for j in range(len(JOINT_NAMES)) if MIRROR[j] > j]  # each left/right pair once
# OKS falloff per joint, from COCO's (head ~ eyes/ears, neck and torso ~ shoulders and hips).
OKS_SIGMAS = np.array([0.079, 0.079, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.107, 0.087, 0.087,
                       0.089, 0.089])


def _torso_size(joints_2d, visibility, box):
    neck, hips = JOINT["neck"], (JOINT["right_hip"], JOINT["left_hip"])
    if visibility[neck] > 0 and all(visibility[h] > 0 for h in hips):
        return float(np.linalg.norm(joints_2d[neck] - joints_2d[list(hips)].mean(axis=0)))
    return 0.3 * float(box[3])


def match_people(pred_2d, pred_valid, person_scores, gt_2d, gt_visibility):
    """List of (pred index, gt index) pairs."""
    order = [int(i) for i in np.argsort(-person_scores) if person_scores[i] > 0]
    free = set(range(len(gt_2d)))
    pairs = []
    for p in order:
        best, best_distance = None, np.inf
        for g in free:
            both = (gt_visibility[g] > 0) & pred_valid[p]
            if not both.any():
                continue
            distance = float(np.linalg.norm(pred_2d[p][both] - gt_2d[g][both], axis=-1).mean())
            if distance < best_distance:
                best, best_distance = g, distance
        if best is not None:
            pairs.append((p, best))
            free.discard(best)
    return pairs


def evaluate_pose(predictions, frames):
    """Metrics over frames.

    Args:
        predictions: one dict per frame with `keypoints_2d` [P, J, 2], `keypoints_3d` [P, J, 3],
            `keypoint_scores` [P, J], `keypoint_inferred` [P, J], `person_scores` [P], `num_people`.
        frames: the matching `PeopleFrame`s.
    """
    joints = len(JOINT_NAMES)
    pck_hits, map_hits, totals, totals_3d = np.zeros(joints), np.zeros(joints), np.zeros(joints), np.zeros(joints)
    swaps, swap_totals = np.zeros(joints), np.zeros(joints)  # over labelled sided joints whose mirror is labelled
    pair_counts = np.zeros(3)  # twin pairs apart, turned, collapsed (`twin_pair_outcomes`)
    errors = [[] for _ in range(joints)]
    images, annotations, results = [], [], []
    for image_id, (pred, frame) in enumerate(zip(predictions, frames), start=1):
        count = int(pred["num_people"])
        valid = (pred["keypoint_scores"][:count] > 0) | pred["keypoint_inferred"][:count]
        pairs = match_people(pred["keypoints_2d"][:count], valid, pred["person_scores"][:count], frame.joints_2d,
                             frame.visibility)
        labelled = frame.visibility > 0
        has_3d = labelled & np.all(np.isfinite(frame.joints_3d), axis=-1)  # COCO-style files may lack 3D labels
        totals += labelled.sum(axis=0)
        totals_3d += has_3d.sum(axis=0)
        swap_totals += (labelled & SIDED & labelled[:, MIRROR]).sum(axis=0)
        for p, g in pairs:
            ok = labelled[g] & valid[p]
            torso = _torso_size(frame.joints_2d[g], frame.visibility[g], frame.boxes[g])
            error_2d = np.linalg.norm(pred["keypoints_2d"][p] - frame.joints_2d[g], axis=-1)
            error_3d = np.linalg.norm(pred["keypoints_3d"][p] - frame.joints_3d[g], axis=-1)
            pck_hits += ok & (error_2d <= PCK_FRACTION * torso)
            mirror_error = np.linalg.norm(pred["keypoints_2d"][p] - frame.joints_2d[g][MIRROR], axis=-1)
            swaps += (ok & SIDED & labelled[g][MIRROR] & (error_2d > PCK_FRACTION * torso)
                      & (mirror_error <= PCK_FRACTION * torso))
            map_hits += ok & has_3d[g] & (error_3d <= DISTANCE_3D_M)
            pair_counts += twin_pair_outcomes(pred["keypoints_2d"][p], ok, frame.joints_2d[g], PCK_FRACTION * torso)
            for j in np.flatnonzero(ok & has_3d[g]):
                errors[j].append(error_3d[j])
        images.append({"id": image_id, "width": int(frame.depth_mm.shape[1]), "height": int(frame.depth_mm.shape[0])})
        for g in range(frame.num_people):
            keypoints = np.concatenate([frame.joints_2d[g], frame.visibility[g][:, None].astype(np.float32)], 1)
            keypoints[frame.visibility[g] == 0, :2] = 0
            x, y, w, h = (float(v) for v in frame.boxes[g])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "keypoints": keypoints.ravel().tolist(), "num_keypoints": int(labelled[g].sum()),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        for p in range(count):
            keypoints = np.concatenate([pred["keypoints_2d"][p], valid[p][:, None].astype(np.float32)], 1)
            results.append({"image_id": image_id, "category_id": 1, "keypoints": keypoints.ravel().tolist(),
                            "score": float(pred["person_scores"][p])})
    per_joint = {name: {"pck@0.2": _share(pck_hits[j], totals[j]),
                        "map@10cm": _share(map_hits[j], totals_3d[j]) if totals_3d[j] else None,
                        "mpjpe_mm": float(np.mean(errors[j]) * 1000) if errors[j] else None,
                        "swapped@0.2": _share(swaps[j], swap_totals[j]) if SIDED[j] else None,
                        "labelled": int(totals[j])} for j, name in enumerate(JOINT_NAMES)}
    all_errors = np.concatenate([np.asarray(e) for e in errors if e]) if any(errors) else np.zeros(0)
    return {"frames": len(frames), "people": len(annotations), "predicted_people": len(results),
            "pck@0.2": _share(pck_hits.sum(), totals.sum()), "map@10cm": float(np.mean(
                [per_joint[n]["map@10cm"] for n in JOINT_NAMES if per_joint[n]["map@10cm"] is not None]))
            if totals_3d.any() else None,
            "mpjpe_mm": float(all_errors.mean() * 1000) if all_errors.size else None,
            "swapped@0.2": _share(swaps.sum(), swap_totals.sum()),
            "twin_pairs": {"apart": int(pair_counts[0]), "turned@0.2": _share(pair_counts[1], pair_counts[0]),
                           "collapsed@0.2": _share(pair_counts[2], pair_counts[0])},
            **oks_average_precision(images, annotations, results), "per_joint": per_joint}


def twin_pair_outcomes(predicted, found, labels, distance):
    """[apart, turned, collapsed] counts over one matched person's left/right pairs: `predicted` [J, 2] joints,
    `found` [J] those labelled and predicted, `labels` [J, 2], `distance` the PCK distance. A pair counts where both
    are found and its labels lie more than twice `distance` apart (no joint then lies near both labels)."""
    counts = np.zeros(3)
    for a, b in TWIN_PAIRS:
        if not (found[a] and found[b]) or np.linalg.norm(labels[a] - labels[b]) <= 2 * distance:
            continue
        on = {(joint, label): bool(np.linalg.norm(predicted[joint] - labels[label]) <= distance)
              for joint in (a, b) for label in (a, b)}
        counts[0] += 1
        counts[1] += on[a, b] and on[b, a]
        counts[2] += (on[a, a] and on[b, a]) or (on[a, b] and on[b, b])
    return counts


def _share(hits, total):
    return float(hits / total) if total else 0.0


def oks_average_precision(images, annotations, results):
    """COCO keypoint AP, AP50, AP75 with pose_tl's 15 joints and OKS sigmas."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not annotations or not results:
        return {"oks_ap": 0.0, "oks_ap50": 0.0, "oks_ap75": 0.0}
    ground_truth = COCO()
    ground_truth.dataset = {"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "person", "keypoints": list(JOINT_NAMES),
         "skeleton": [[a + 1, b + 1] for a, b in LIMBS]}]}
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        detections = ground_truth.loadRes(results)
        evaluator = COCOeval(ground_truth, detections, "keypoints")
        evaluator.params.kpt_oks_sigmas = OKS_SIGMAS
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50, ap75 = (max(0.0, float(v)) for v in evaluator.stats[:3])
    return {"oks_ap": ap, "oks_ap50": ap50, "oks_ap75": ap75}


def format_pose_report(report):
    def number(value, spec=".4f"):
        return "n/a" if value is None else format(value, spec)

    lines = [f"frames: {report['frames']}   people: {report['people']}   predicted: {report['predicted_people']}",
             f"PCK@0.2: {report['pck@0.2']:.4f}   mAP@10cm: {number(report['map@10cm'])}   MPJPE: "
             f"{number(report['mpjpe_mm'], '.1f')} mm   OKS AP: {report['oks_ap']:.4f} (AP50 {report['oks_ap50']:.4f}, "
             f"AP75 {report['oks_ap75']:.4f})",
             f"left/right swapped@0.2: {report['swapped@0.2']:.4f} of the left and right joints (hit the mirror "
             "joint instead)" + ("" if "twin_pairs" not in report else
                                 f"; of {report['twin_pairs']['apart']} left/right pairs, turned "
                                 f"{report['twin_pairs']['turned@0.2']:.4f} (front taken for back), collapsed "
                                 f"{report['twin_pairs']['collapsed@0.2']:.4f} (both on one limb)"), "",
             f"{'joint':<16}{'PCK@0.2':>10}{'mAP@10cm':>10}{'MPJPE mm':>10}{'swapped':>10}{'labelled':>10}"]
    for name, row in report["per_joint"].items():
        lines.append(f"{name:<16}{row['pck@0.2']:>10.4f}{number(row['map@10cm']):>10}"
                     f"{number(row['mpjpe_mm'], '.1f'):>10}{number(row['swapped@0.2']):>10}{row['labelled']:>10d}")
    return "\n".join(lines) + "\n"
