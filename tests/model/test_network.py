"""The network builds for every preset and loads public-format checkpoints with strict=True."""

from __future__ import annotations

import pytest
import torch

from facelocal.config import PRESETS, get_config
from facelocal.models import build_model, load_pretrained
from facelocal.models.retinaface import read_state_dict


@pytest.mark.parametrize("name", ["mobilenet0.25", "mobilenet0.25-1mb"])
def test_real_checkpoint_loads_strictly(weights_path, name):
    model = load_pretrained(get_config(name), weights_path)
    checkpoint = read_state_dict(weights_path)
    assert set(model.state_dict()) == set(checkpoint)
    assert sum(p.numel() for p in model.parameters()) == 426_608
    assert torch.equal(model.state_dict()["ClassHead.0.conv1x1.weight"], checkpoint["ClassHead.0.conv1x1.weight"])


def test_resnet50_public_format_loads_strictly(tmp_path):
    """A ResNet-50 checkpoint as the public port saves it (DataParallel `module.` prefix, torchvision key layout)."""
    source = build_model(get_config("resnet50"))
    keys = set(source.state_dict())
    assert {"body.conv1.weight", "body.layer4.2.bn3.running_var", "body.layer2.0.downsample.0.weight"} <= keys
    assert {"fpn.output3.0.weight", "ssh3.conv7x7_3.1.bias", "LandmarkHead.2.conv1x1.weight"} <= keys
    path = tmp_path / "Resnet50_Final.pth"
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, path)
    loaded = load_pretrained(get_config("resnet50"), path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_mismatched_checkpoint_is_rejected(weights_path):
    with pytest.raises(RuntimeError, match="size mismatch|Missing key"):
        load_pretrained(get_config("resnet50"), weights_path)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_head_rows_match_anchor_count(name):
    from facelocal.anchors import generate_anchors

    config = get_config(name)
    model = build_model(config).eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 96, 160))
    anchors = generate_anchors(96, 160, config.levels)
    assert out.bbox.shape == (1, anchors.shape[0], 4)
    assert out.cls_logits.shape == (1, anchors.shape[0], 2)
    assert out.landmarks.shape == (1, anchors.shape[0], 10)


def test_paper_config_has_p2_to_p6_with_three_scales():
    config = get_config("paper")
    assert [level.name for level in config.levels] == ["P2", "P3", "P4", "P5", "P6"]
    assert config.strides == (4, 8, 16, 32, 64)
    for level in config.levels:
        sizes = level.anchor_sizes
        assert len(sizes) == 3
        assert sizes[1] / sizes[0] == pytest.approx(2 ** (1 / 3))
    assert config.levels[0].anchor_sizes[0] == 16 and config.levels[-1].anchor_sizes[-1] == pytest.approx(
        406.37, abs=0.01
    )
