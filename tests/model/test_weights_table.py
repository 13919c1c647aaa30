"""The weights table: ``$FACELOCAL_WEIGHTS_TABLE`` names the TOML file; ``$FACELOCAL_CONFIG`` still works, warned."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from facelocal.weights import WeightsNotFoundError, resolve_mesh_weights, resolve_weights


@pytest.fixture
def table(tmp_path, monkeypatch, weights_path, mesh_weights_path):
    """A weights table naming the shared checkpoints; no other variable points anywhere."""
    path = tmp_path / "weights.toml"
    path.write_text(f'[weights]\n"mobilenet0.25" = "{weights_path}"\nfacemesh = "{mesh_weights_path}"\n')
    for name in ("FACELOCAL_WEIGHTS", "FACELOCAL_MESH_WEIGHTS", "FACELOCAL_WEIGHTS_TABLE", "FACELOCAL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_table_names_the_weights_of_each_preset_and_the_mesh(table, monkeypatch, weights_path, mesh_weights_path):
    monkeypatch.setenv("FACELOCAL_WEIGHTS_TABLE", str(table))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_weights() == weights_path
        assert resolve_mesh_weights() == mesh_weights_path
    with pytest.raises(WeightsNotFoundError, match=f'add \\[weights\\] "mobilenet0.25-1mb" = "PATH" to {table}'):
        resolve_weights(model="mobilenet0.25-1mb")


def test_the_old_variable_still_names_the_table_with_a_warning(table, monkeypatch, weights_path):
    monkeypatch.setenv("FACELOCAL_CONFIG", str(table))
    with pytest.warns(FutureWarning, match="FACELOCAL_CONFIG is deprecated.*FACELOCAL_WEIGHTS_TABLE"):
        assert resolve_weights() == weights_path


def test_the_new_variable_wins_over_the_old_one(table, tmp_path, monkeypatch):
    monkeypatch.setenv("FACELOCAL_CONFIG", str(table))
    monkeypatch.setenv("FACELOCAL_WEIGHTS_TABLE", str(tmp_path / "none.toml"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(WeightsNotFoundError, match="none.toml"):
            resolve_weights()


def test_shared_data_comes_from_the_flag_the_environment_or_the_table_never_the_working_directory(
    table, tmp_path, monkeypatch, weights_path
) -> None:
    from facelocal.cli import main
    from facelocal.weights import DataNotFoundError, resolve_data

    data = weights_path.parents[1]  # shared/data
    photo = "images/selfie_group.jpg"
    monkeypatch.delenv("FACELOCAL_DATA", raising=False)
    monkeypatch.setenv("FACELOCAL_WEIGHTS_TABLE", str(table))
    # Run from inside the repository, where ../shared/data does exist: still nothing is guessed.
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    with pytest.raises(DataNotFoundError, match="pass --photo PATH, set \\$FACELOCAL_DATA"):
        resolve_data(None, photo, "--photo")
    assert main(["bench", "--weights", str(weights_path), "--threads", "1"]) == 2  # a clear error, not a traceback
    assert resolve_data(data / photo, photo, "--photo") == data / photo
    table.write_text(table.read_text() + f'[data]\nroot = "{data}"\n')
    assert resolve_data(None, photo, "--photo") == data / photo
    monkeypatch.setenv("FACELOCAL_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError, match="does not exist"):
        resolve_data(None, photo, "--photo")  # the environment wins over the table
