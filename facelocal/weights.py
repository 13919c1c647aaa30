"""Where the weights and the shared data come from: a flag, the environment, or the user's weights table. Never
the network, and never a path relative to wherever the command happens to run."""

from __future__ import annotations

import hashlib
import os
import tomllib
import warnings
from pathlib import Path

from facelocal.config import DEFAULT_PRESET

WEIGHTS_ENV = "FACELOCAL_WEIGHTS"
MESH_WEIGHTS_ENV = "FACELOCAL_MESH_WEIGHTS"
# The weights table's key for MediaPipe's face_landmark.tflite (the FaceMesh stage).
MESH_WEIGHTS_KEY = "facemesh"
CACHE_ENV = "XDG_CACHE_HOME"
# A TOML file whose [weights] table names a checkpoint per preset (and the FaceMesh model).
WEIGHTS_TABLE_ENV = "FACELOCAL_WEIGHTS_TABLE"
# Its old name, read with a warning for one release.
DEPRECATED_WEIGHTS_TABLE_ENV = "FACELOCAL_CONFIG"
DEFAULT_WEIGHTS_TABLE = Path("~/.config/facelocal/config.toml")
# The shared data folder (photos, WIDER FACE sample, 300-W faces, peers' models): its environment variable, and
# its key under [data] in the weights table.
DATA_ENV = "FACELOCAL_DATA"
DATA_KEY = "root"


# Public checkpoints this library recognises by content, and the preset each was trained with. Files with the
# same key names but other training (there are many retrains of mobilenet0.25_Final.pth) are not listed.
KNOWN_CHECKPOINTS: dict[str, str] = {
    # biubug6/Pytorch_Retinaface release, RetinaFace MobileNet-0.25 (README, "Getting the weights").
    "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220": "mobilenet0.25",
    # biubug6/Face-Detector-1MB-with-landmark, weights/mobilenet0.25_Final.pth: same keys, anchors 10-256, ReLU.
    "ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1": "mobilenet0.25-1mb",
}


class WeightsNotFoundError(FileNotFoundError):
    """No usable weights path; the message names every way to provide one."""


class WeightsNotNamedError(WeightsNotFoundError):
    """Neither the flag, the environment nor the weights table names a file (rather than naming a missing one)."""


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def preset_for(weights: str | os.PathLike, requested: str | None = None) -> str:
    """The preset to build for ``weights``: ``requested`` if given, else the known file's, else the default.

    A request that contradicts a known file is honoured (a user may know better) with a warning, since the
    wrong preset loads without error and gives boxes in the wrong places.
    """
    known = KNOWN_CHECKPOINTS.get(file_sha256(weights))
    if requested is None:
        return known or DEFAULT_PRESET
    if known is not None and known != requested:
        warnings.warn(
            f"{weights} is a known {known} checkpoint, but preset {requested} was asked for; its faces will be "
            f"misplaced unless it was retrained (drop the preset to use {known})",
            stacklevel=2,
        )
    return requested


def weights_table_file() -> Path:
    """``$FACELOCAL_WEIGHTS_TABLE``, else the deprecated ``$FACELOCAL_CONFIG`` (with a warning), else the default."""
    path = os.environ.get(WEIGHTS_TABLE_ENV)
    if not path and os.environ.get(DEPRECATED_WEIGHTS_TABLE_ENV):
        warnings.warn(
            f"${DEPRECATED_WEIGHTS_TABLE_ENV} is deprecated and will be ignored in the next release: "
            f"set ${WEIGHTS_TABLE_ENV} instead",
            FutureWarning,
            stacklevel=2,
        )
        path = os.environ[DEPRECATED_WEIGHTS_TABLE_ENV]
    return Path(path or DEFAULT_WEIGHTS_TABLE).expanduser()


def resolve_weights(explicit: str | os.PathLike | None = None, model: str | None = None) -> Path:
    """The first of: ``explicit``, ``$FACELOCAL_WEIGHTS``, ``weights.<model>`` in the weights table.

    The weights table (the file ``$FACELOCAL_WEIGHTS_TABLE`` or ``~/.config/facelocal/config.toml``) looks like::

        [weights]
        "mobilenet0.25" = "/data/weights/mobilenet0.25_Final.pth"

    ``model`` (a preset name) picks the entry; without one, the default preset's.
    """
    model = model or DEFAULT_PRESET
    return _resolve(
        ("--weights", explicit),
        WEIGHTS_ENV,
        model,
        f"weights for {model}",
        f'pass --weights PATH, set ${WEIGHTS_ENV}, or add [weights] "{model}" = "PATH" to {{table}}. '
        'See the README section "Getting the weights".',
    )


def resolve_mesh_weights(explicit: str | os.PathLike | None = None) -> Path:
    """MediaPipe's ``face_landmark.tflite``: the first of ``explicit``, ``$FACELOCAL_MESH_WEIGHTS`` and
    ``weights.facemesh`` in the weights table (see :func:`resolve_weights`)."""
    return _resolve(
        ("--mesh-weights", explicit),
        MESH_WEIGHTS_ENV,
        MESH_WEIGHTS_KEY,
        "FaceMesh model",
        f"pass --mesh-weights PATH (MediaPipe's face_landmark.tflite), set ${MESH_WEIGHTS_ENV}, "
        f'or add [weights] {MESH_WEIGHTS_KEY} = "PATH" to {{table}}. See the README section "Dense face mesh".',
    )


def _resolve(flag: tuple[str, str | os.PathLike | None], env: str, entry_key: str, what: str, fix: str) -> Path:
    """The first place that names a file (the flag, the environment, the weights table's entry); a
    named file that does not exist is an error, not a reason to look further."""
    candidates: list[tuple[str, str]] = []
    if flag[1]:
        candidates.append((flag[0], str(flag[1])))
    if os.environ.get(env):
        candidates.append((f"${env}", os.environ[env]))
    path = weights_table_file()
    if path.is_file():
        entry = tomllib.loads(path.read_text()).get("weights", {}).get(entry_key)
        if entry:
            candidates.append((str(path), entry))
    for source, value in candidates:
        weights = Path(value).expanduser()
        if weights.is_file():
            return weights
        raise WeightsNotFoundError(f"{what}: {weights} (from {source}) does not exist")
    raise WeightsNotNamedError(f"no {what}: " + fix.format(table=path))


class DataNotFoundError(FileNotFoundError):
    """A shared data file or folder that nothing names, or that is not there; the message says how to fix it."""


def resolve_data(explicit: str | os.PathLike | None, relative: str, flag: str) -> Path:
    """A file or folder of the shared data: ``explicit`` (``flag``'s value), else ``relative`` under
    ``$FACELOCAL_DATA``, else under ``root`` in the weights table's ``[data]`` table::

        [data]
        root = "/data/shared/data"
    """
    if explicit:
        path = Path(explicit).expanduser()
    else:
        table = weights_table_file()
        root = os.environ.get(DATA_ENV)
        if not root and table.is_file():
            root = tomllib.loads(table.read_text()).get("data", {}).get(DATA_KEY)
        if not root:
            raise DataNotFoundError(
                f"no {relative}: pass {flag} PATH, set ${DATA_ENV} to the shared data folder that holds it, "
                f'or add [data] {DATA_KEY} = "PATH" to {table}'
            )
        path = Path(root).expanduser() / relative
    if not path.exists():
        raise DataNotFoundError(f"{path} does not exist (pass {flag} PATH)")
    return path


def exported_model_path(weights: str | os.PathLike, preset: str) -> Path:
    """Where ``facelocal serve --weights`` keeps the ONNX export of ``weights`` under ``preset``.

    Keyed by the file's content and the preset, so a changed file or preset never reuses a stale export.
    """
    cache = Path(os.environ.get(CACHE_ENV) or "~/.cache").expanduser() / "facelocal" / "models"
    return cache / f"{file_sha256(weights)[:16]}-{preset}.onnx"
