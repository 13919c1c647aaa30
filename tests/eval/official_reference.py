"""Oracle: the public ``widerface_evaluate/evaluation.py`` (Pytorch_Retinaface) per-image and AP logic,
transcribed loop for loop, to check the vectorised evaluator against on real ground truth."""

from __future__ import annotations

import numpy as np


def bbox_overlaps(boxes, query):
    out = np.zeros((len(boxes), len(query)))
    for k in range(len(query)):
        area = (query[k, 2] - query[k, 0] + 1) * (query[k, 3] - query[k, 1] + 1)
        for n in range(len(boxes)):
            iw = min(boxes[n, 2], query[k, 2]) - max(boxes[n, 0], query[k, 0]) + 1
            if iw > 0:
                ih = min(boxes[n, 3], query[k, 3]) - max(boxes[n, 1], query[k, 1]) + 1
                if ih > 0:
                    ua = (boxes[n, 2] - boxes[n, 0] + 1) * (boxes[n, 3] - boxes[n, 1] + 1) + area - iw * ih
                    out[n, k] = iw * ih / ua
    return out


def image_eval(pred, gt, ignore, iou_thresh):
    _pred, _gt = pred.copy(), gt.copy()
    pred_recall = np.zeros(_pred.shape[0])
    recall_list = np.zeros(_gt.shape[0])
    proposal_list = np.ones(_pred.shape[0])
    _pred[:, 2] += _pred[:, 0]
    _pred[:, 3] += _pred[:, 1]
    _gt[:, 2] += _gt[:, 0]
    _gt[:, 3] += _gt[:, 1]
    overlaps = bbox_overlaps(_pred[:, :4], _gt)
    for h in range(_pred.shape[0]):
        gt_overlap = overlaps[h]
        max_overlap, max_idx = gt_overlap.max(), gt_overlap.argmax()
        if max_overlap >= iou_thresh:
            if ignore[max_idx] == 0:
                recall_list[max_idx] = -1
                proposal_list[h] = -1
            elif recall_list[max_idx] == 0:
                recall_list[max_idx] = 1
        pred_recall[h] = len(np.where(recall_list == 1)[0])
    return pred_recall, proposal_list


def img_pr_info(thresh_num, pred_info, proposal_list, pred_recall):
    pr_info = np.zeros((thresh_num, 2))
    for t in range(thresh_num):
        thresh = 1 - (t + 1) / thresh_num
        r_index = np.where(pred_info[:, 4] >= thresh)[0]
        if len(r_index) > 0:
            r_index = r_index[-1]
            pr_info[t, 0] = len(np.where(proposal_list[: r_index + 1] == 1)[0])
            pr_info[t, 1] = pred_recall[r_index]
    return pr_info


def voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def evaluate(pred: dict, gt: dict, setting: str, thresh_num: int = 1000) -> float:
    """``pred``: key -> (N, 5) sorted by descending score; ``gt``: key -> GroundTruthImage."""
    max_score, min_score = 0, 1
    for v in pred.values():
        if len(v):
            max_score, min_score = max(np.max(v[:, -1]), max_score), min(np.min(v[:, -1]), min_score)
    pred = {k: v.copy() for k, v in pred.items()}
    for v in pred.values():
        if len(v):
            v[:, -1] = (v[:, -1] - min_score) / (max_score - min_score)
    count_face = 0
    pr_curve = np.zeros((thresh_num, 2))
    for key, pred_info in pred.items():
        gt_boxes = gt[key].boxes
        keep_index = gt[key].keep[setting] + 1
        count_face += len(keep_index)
        if len(gt_boxes) == 0 or len(pred_info) == 0:
            continue
        ignore = np.zeros(gt_boxes.shape[0])
        if len(keep_index) != 0:
            ignore[keep_index - 1] = 1
        pred_recall, proposal_list = image_eval(pred_info, gt_boxes, ignore, 0.5)
        pr_curve += img_pr_info(thresh_num, pred_info, proposal_list, pred_recall)
    with np.errstate(invalid="ignore"):  # 0/0 where no proposal clears a threshold, as in the original
        prec = pr_curve[:, 1] / pr_curve[:, 0]
    rec = pr_curve[:, 1] / count_face
    return voc_ap(rec, prec)
