"""``cloud-coordinator devices register|list`` and the help text."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_coordinator.cli import main


def test_devices_register_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "coordinator.toml"
    config.write_text('[catalog]\nurl = "sqlite:catalog.db"\n')
    base = ["--config", str(config), "devices"]

    assert main([*base, "register", "--device", "d-1", "--rider", "r-1"]) == 0
    assert main([*base, "register", "--device", "d-2", "--rider", "r-2"]) == 0
    assert (
        main([*base, "register", "--device", "d-2", "--rider", "r-1", "--suit", "S"])
        == 0
    )
    assert main([*base, "register", "--device", "../x", "--rider", "r-1"]) == 2
    capsys.readouterr()
    assert main([*base, "list", "--rider", "r-1"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert lines == [["d-1", "r-1", "d-1"], ["d-2", "r-1", "S"]]
    assert (tmp_path / "catalog.db").exists()


def test_devices_help_explains_the_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["devices", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for needle in ("device-sample/1", "[devices] window_s", "quarantine_bucket"):
        assert needle in text
