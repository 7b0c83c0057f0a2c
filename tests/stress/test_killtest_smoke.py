"""The kill test's machinery, run briefly (the full run is `make kill-test`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stress import killtest


@pytest.mark.timeout(600)
def test_a_few_kills_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    code = killtest.main(
        [
            "--kills",
            "3",
            "--initial-logs",
            "1",
            "--new-logs-every",
            "2",
            "--keep",
            str(tmp_path),
        ]
    )
    assert code == 0
