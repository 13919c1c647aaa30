"""Where the weights come from: a flag, the environment, or the user's config file. Never the network."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from facelocal.config import DEFAULT_CONFIG

WEIGHTS_ENV = "FACELOCAL_WEIGHTS"
CONFIG_ENV = "FACELOCAL_CONFIG"
DEFAULT_CONFIG_FILE = Path("~/.config/facelocal/config.toml")


class WeightsNotFoundError(FileNotFoundError):
    """No usable weights path; the message names every way to provide one."""


def config_file() -> Path:
    return Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE)).expanduser()


def resolve_weights(explicit: str | os.PathLike | None = None, model: str = DEFAULT_CONFIG) -> Path:
    """The first of: ``explicit``, ``$FACELOCAL_WEIGHTS``, ``weights.<model>`` in the config file.

    The config file (``$FACELOCAL_CONFIG`` or ``~/.config/facelocal/config.toml``) looks like::

        [weights]
        "mobilenet0.25-1mb" = "/data/weights/mobilenet0.25_Final.pth"
    """
    candidates: list[tuple[str, str]] = []
    if explicit:
        candidates.append(("--weights", str(explicit)))
    if os.environ.get(WEIGHTS_ENV):
        candidates.append((f"${WEIGHTS_ENV}", os.environ[WEIGHTS_ENV]))
    path = config_file()
    if path.is_file():
        entry = tomllib.loads(path.read_text()).get("weights", {}).get(model)
        if entry:
            candidates.append((str(path), entry))
    for source, value in candidates:
        weights = Path(value).expanduser()
        if weights.is_file():
            return weights
        raise WeightsNotFoundError(f"weights file {weights} (from {source}) does not exist")
    raise WeightsNotFoundError(
        f"no weights for {model}: pass --weights PATH, set ${WEIGHTS_ENV}, or add "
        f'[weights] "{model}" = "PATH" to {path}. See the README section "Getting the weights".'
    )
