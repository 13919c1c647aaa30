"""The official WIDER FACE validation protocol (``eval_tools`` / ``widerface_evaluate``), in numpy.

Ground truth comes from the official ``.mat`` files: ``wider_face_val.mat`` (every face, ``x y w h``) and
``wider_{easy,medium,hard}_val.mat`` (per image, the 1-based indices of the faces a setting keeps). The
algorithm, as in the public evaluation code:

1. scores are normalised to [0, 1] over the whole prediction set (min-max, min started at 1 and max at 0);
2. per image, each prediction in descending score order takes its best-IoU face; at IoU >= 0.5 a face
   outside the setting's list makes the prediction ignored (neither hit nor false positive), a kept face not
   yet recalled becomes recalled, and a kept face already recalled leaves the prediction a false positive;
3. for 1000 thresholds ``1 - (t + 1) / 1000`` the proposals (non-ignored predictions) and recalled faces at
   or above the threshold are summed over images; images without ground-truth faces or without predictions
   contribute faces to the recall denominator only, as in the official code;
4. AP is the VOC area under the precision envelope.

IoU uses the official ``+1`` pixel convention of ``bbox_overlaps`` on ``(x, y, x + w, y + h)`` boxes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SETTINGS = ("easy", "medium", "hard")
THRESHOLD_COUNT = 1000
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class GroundTruthImage:
    """One validation image: its event folder, file stem, every face ``(N, 4)`` as ``x y w h`` float64, and
    per setting the 0-based indices of the faces that setting keeps."""

    event: str
    name: str
    boxes: np.ndarray
    keep: Mapping[str, np.ndarray]

    @property
    def key(self) -> str:
        return f"{self.event}/{self.name}"


def load_ground_truth(gt_dir: str | Path) -> dict[str, GroundTruthImage]:
    """Read the four official ``.mat`` files in ``gt_dir``; keys are ``event/name`` (no extension)."""
    from scipy.io import loadmat

    gt_dir = Path(gt_dir)
    paths = {"all": gt_dir / "wider_face_val.mat", **{s: gt_dir / f"wider_{s}_val.mat" for s in SETTINGS}}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"WIDER FACE ground truth missing: {', '.join(missing)}")
    faces = loadmat(paths["all"])
    lists = {s: loadmat(paths[s])["gt_list"] for s in SETTINGS}
    images = {}
    for e, event_cell in enumerate(faces["event_list"]):
        event = str(event_cell[0][0])
        for j, file_cell in enumerate(faces["file_list"][e][0]):
            name = str(file_cell[0][0])
            boxes = faces["face_bbx_list"][e][0][j][0].astype(np.float64).reshape(-1, 4)
            keep = {s: lists[s][e][0][j][0].astype(np.int64).ravel() - 1 for s in SETTINGS}
            images[f"{event}/{name}"] = GroundTruthImage(event, name, boxes, keep)
    return images


def normalise_scores(predictions: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Min-max normalise the score column (last) of every ``(N, 5)`` ``x y w h score`` array over the whole set.

    As the official ``norm_score``: the minimum starts at 1 and the maximum at 0. When every score is equal the
    official code divides by zero; here they all become 1.
    """
    non_empty = [p[:, 4] for p in predictions.values() if len(p)]
    low = min([1.0] + [float(s.min()) for s in non_empty])
    high = max([0.0] + [float(s.max()) for s in non_empty])
    spread = high - low
    out = {}
    for key, pred in predictions.items():
        pred = np.array(pred, dtype=np.float64).reshape(-1, 5)
        pred[:, 4] = (pred[:, 4] - low) / spread if spread > 0 else 1.0
        out[key] = pred
    return out


def official_iou(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU with the ``+1`` pixel convention of the official Cython ``bbox_overlaps``."""
    iw = (
        np.minimum(pred_xyxy[:, None, 2], gt_xyxy[None, :, 2])
        - np.maximum(pred_xyxy[:, None, 0], gt_xyxy[None, :, 0])
        + 1
    )
    ih = (
        np.minimum(pred_xyxy[:, None, 3], gt_xyxy[None, :, 3])
        - np.maximum(pred_xyxy[:, None, 1], gt_xyxy[None, :, 1])
        + 1
    )
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    pred_area = (pred_xyxy[:, 2] - pred_xyxy[:, 0] + 1) * (pred_xyxy[:, 3] - pred_xyxy[:, 1] + 1)
    gt_area = (gt_xyxy[:, 2] - gt_xyxy[:, 0] + 1) * (gt_xyxy[:, 3] - gt_xyxy[:, 1] + 1)
    union = pred_area[:, None] + gt_area[None, :] - inter
    return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_image(
    pred: np.ndarray, gt_boxes: np.ndarray, kept: np.ndarray, iou_threshold: float = IOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """The official ``image_eval`` for one image.

    Args:
        pred: ``(N, 5)`` ``x y w h score``, by descending score; gt_boxes: ``(M, 4)`` ``x y w h``;
        kept: ``(M,)`` bool, the faces the setting keeps.

    Returns:
        recalled_after: ``(N,)`` number of kept faces recalled by predictions ``0..i``;
        is_proposal: ``(N,)`` bool, False for predictions matched to a face the setting ignores.
    """
    pred_xyxy = np.concatenate([pred[:, :2], pred[:, :2] + pred[:, 2:4]], axis=1)
    gt_xyxy = np.concatenate([gt_boxes[:, :2], gt_boxes[:, :2] + gt_boxes[:, 2:4]], axis=1)
    overlaps = official_iou(pred_xyxy, gt_xyxy)
    best = overlaps.argmax(axis=1)
    best_iou = overlaps[np.arange(len(pred)), best]
    matched = best_iou >= iou_threshold
    is_proposal = ~(matched & ~kept[best])
    hits = np.nonzero(matched & kept[best])[0]
    # Only a face's first (highest-scoring) hit recalls it; later hits stay proposals, i.e. false positives.
    _, first = np.unique(best[hits], return_index=True)
    newly_recalled = np.zeros(len(pred), np.int64)
    newly_recalled[hits[first]] = 1
    recalled_after = np.cumsum(newly_recalled)
    return recalled_after, is_proposal


def thresholds(count: int = THRESHOLD_COUNT) -> np.ndarray:
    """The official sweep ``1 - (t + 1) / count`` for ``t = 0 .. count - 1`` (0.999 down to 0)."""
    return 1.0 - (np.arange(count) + 1) / count


def image_pr_counts(scores: np.ndarray, recalled_after: np.ndarray, is_proposal: np.ndarray) -> np.ndarray:
    """The official ``img_pr_info``: ``(T, 2)`` proposals and recalled faces at each threshold.

    ``scores`` must be descending: the count runs up to the last prediction at or above the threshold.
    """
    last = np.searchsorted(-scores, -thresholds(), side="right") - 1
    proposals_cum = np.cumsum(is_proposal)
    counts = np.zeros((THRESHOLD_COUNT, 2))
    hit = last >= 0
    counts[hit, 0] = proposals_cum[last[hit]]
    counts[hit, 1] = recalled_after[last[hit]]
    return counts


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC AP: the area under the precision envelope (precision made non-increasing in recall)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


@dataclass(frozen=True)
class SettingResult:
    """One setting's AP, its PR curve over the 1000 thresholds and the number of faces it counts."""

    ap: float
    precision: np.ndarray
    recall: np.ndarray
    faces: int


@dataclass(frozen=True)
class WiderFaceResult:
    settings: dict[str, SettingResult]
    images: int

    def summary(self) -> dict:
        """JSON-ready: AP and face count per setting, and the number of images evaluated."""
        return {
            "images": self.images,
            **{name: {"ap": r.ap, "faces": r.faces} for name, r in self.settings.items()},
        }


def evaluate(
    predictions: Mapping[str, np.ndarray],
    ground_truth: Mapping[str, GroundTruthImage],
    iou_threshold: float = IOU_THRESHOLD,
    settings: Iterable[str] = SETTINGS,
) -> WiderFaceResult:
    """Evaluate ``predictions`` (``event/name`` -> ``(N, 5)`` ``x y w h score``) against the images they cover.

    The ground truth is restricted to the predicted images, so a subset of the validation set can be scored.
    Predictions are ordered by descending score per image (stable), which the official code assumes of its input.
    """
    unknown = sorted(set(predictions) - set(ground_truth))
    if unknown:
        raise KeyError(f"{len(unknown)} predicted images are not in the ground truth, e.g. {unknown[0]!r}")
    normalised = normalise_scores(predictions)
    for key, pred in normalised.items():
        normalised[key] = pred[np.argsort(-pred[:, 4], kind="stable")]
    results = {}
    for setting in settings:
        totals = np.zeros((THRESHOLD_COUNT, 2))
        faces = 0
        for key, pred in normalised.items():
            gt = ground_truth[key]
            faces += len(gt.keep[setting])
            if len(gt.boxes) == 0 or len(pred) == 0:
                continue
            kept = np.zeros(len(gt.boxes), bool)
            kept[gt.keep[setting]] = True
            recalled_after, is_proposal = match_image(pred, gt.boxes, kept, iou_threshold)
            totals += image_pr_counts(pred[:, 4], recalled_after, is_proposal)
        # With no proposal above a threshold the official code divides 0 by 0; recall is 0 there, so any
        # precision leaves the AP unchanged, and 0 keeps the curve finite.
        precision = np.divide(totals[:, 1], totals[:, 0], out=np.zeros(THRESHOLD_COUNT), where=totals[:, 0] > 0)
        recall = totals[:, 1] / faces if faces else np.zeros(THRESHOLD_COUNT)
        results[setting] = SettingResult(voc_ap(recall, precision), precision, recall, faces)
    return WiderFaceResult(results, len(normalised))
