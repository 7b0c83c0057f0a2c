"""The gateway's labelled-window store and the training commands that change it."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from edge_agent.fl import CommandError, WindowStore, apply_training_command
from models import contract


def _log(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    windows = rng.normal(size=(n, contract.WINDOW_SAMPLES, 6)).astype(np.float32)
    return windows, contract.window_starts_s(n)


def _command(kind: str, **fields: object) -> dict[str, object]:
    return {
        "schema": "gateway-command/1",
        "command_id": str(uuid.uuid4()),
        "type": kind,
        "issued_at": "2026-12-04T10:00:00+00:00",
        **fields,
    }


def test_fl_store_labels_airbag_detected_and_normal_windows(tmp_path: Path) -> None:
    windows, starts = _log()
    with WindowStore(tmp_path / "w.db") as store:
        counts = store.add_log(
            log_id="log-1",
            rider_id="r1",
            windows=windows,
            starts_s=starts,
            airbag_offsets_s=[20.0],
            detected_offsets_s=[45.0],
        )
        # Impact 20 s: windows starting 18.5, 19.0, 19.5 s hold it in their middle.
        assert counts.positives == 3
        assert counts.pending == 3
        assert counts.negatives > 0
        stored, labels, logs = store.labelled()
        assert len(stored) == counts.labelled and set(logs) == {"log-1"}
        # The stored bytes are the windows themselves.
        assert any(
            np.array_equal(stored[i], windows[37]) for i in np.flatnonzero(labels)
        )

        # A detected crash the cloud confirms becomes training data, once.
        verdict = _command(
            "crash_verdict",
            rider_id="r1",
            suit_id="s1",
            log_id="log-1",
            verdict="confirmed",
            t_offset_s=45.0,
        )
        assert apply_training_command(store, verdict)
        assert store.counts().positives == 6 and store.counts().pending == 0
        assert apply_training_command(store, verdict)  # re-delivered: no change
        assert store.counts().positives == 6


def test_fl_store_rejected_crash_becomes_hard_negatives(tmp_path: Path) -> None:
    windows, starts = _log()
    with WindowStore(tmp_path / "w.db") as store:
        store.add_log(
            log_id="log-2",
            rider_id="r1",
            windows=windows,
            starts_s=starts,
            detected_offsets_s=[30.0],
        )
        before = store.counts()
        apply_training_command(
            store,
            _command(
                "crash_verdict",
                rider_id="r1",
                suit_id="s1",
                log_id="log-2",
                verdict="rejected",
                t_offset_s=None,
            ),
        )
        after = store.counts()
        assert after.pending == 0
        assert after.negatives == before.negatives + before.pending


def test_fl_consent_opt_out_deletes_and_blocks_windows(tmp_path: Path) -> None:
    windows, starts = _log()
    with WindowStore(tmp_path / "w.db") as store:
        for rider in ("r1", "r2"):
            store.add_log(
                log_id=f"log-{rider}",
                rider_id=rider,
                windows=windows,
                starts_s=starts,
                airbag_offsets_s=[20.0],
            )
        total = store.counts().labelled
        apply_training_command(
            store, _command("training_consent", rider_id="r1", opted_out=True)
        )
        _, _, logs = store.labelled()
        assert set(logs) == {"log-r2"} and store.counts().labelled == total // 2
        # New logs of an opted-out rider are not kept.
        assert (
            store.add_log(
                log_id="log-r1b", rider_id="r1", windows=windows, starts_s=starts
            ).labelled
            == 0
        )
        # An older choice delivered late does not undo the opt-out.
        stale = _command("training_consent", rider_id="r1", opted_out=False)
        stale["issued_at"] = "2026-12-01T00:00:00Z"
        apply_training_command(store, stale)
        assert store.opted_out("r1")
        # Opting in again lets new windows in.
        fresh = _command("training_consent", rider_id="r1", opted_out=False)
        fresh["issued_at"] = "2026-12-05T00:00:00Z"
        apply_training_command(store, fresh)
        assert (
            store.add_log(
                log_id="log-r1c", rider_id="r1", windows=windows, starts_s=starts
            ).labelled
            > 0
        )


def test_fl_store_bound_evicts_normal_windows_first(tmp_path: Path) -> None:
    windows, starts = _log(400)
    with WindowStore(tmp_path / "w.db", max_windows=30) as store:
        store.add_log(
            log_id="a",
            rider_id="r",
            windows=windows,
            starts_s=starts,
            airbag_offsets_s=[50.0, 150.0],
            negative_every=1,
        )
        counts = store.counts()
        assert counts.labelled + counts.pending == 30
        assert counts.positives == 6  # every crash window kept


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"rider_id": "r1", "opted_out": "yes"}, "opted_out"),
        ({"opted_out": True}, "rider_id"),
        ({"rider_id": "r1", "opted_out": True, "issued_at": "yesterday"}, "issued_at"),
    ],
)
def test_fl_bad_consent_command_names_the_field(
    tmp_path: Path, fields: dict[str, object], field: str
) -> None:
    command = _command("training_consent")
    command.update(fields)
    with WindowStore(tmp_path / "w.db") as store, pytest.raises(CommandError) as error:
        apply_training_command(store, command)
    assert error.value.field == field
    assert str(command["command_id"]) in str(error.value)


def test_fl_bad_verdict_and_foreign_commands(tmp_path: Path) -> None:
    with WindowStore(tmp_path / "w.db") as store:
        bad = _command(
            "crash_verdict",
            rider_id="r1",
            suit_id="s1",
            log_id="l",
            verdict="maybe",
            t_offset_s=1.0,
        )
        with pytest.raises(CommandError, match="verdict"):
            apply_training_command(store, bad)
        negative = dict(bad, verdict="confirmed", t_offset_s=-3)
        with pytest.raises(CommandError, match="t_offset_s"):
            apply_training_command(store, negative)
        assert not apply_training_command(store, _command("config_change", settings={}))


def test_fl_agent_handler_applies_training_commands_only(tmp_path: Path) -> None:
    from edge_agent.fl.inbound import TrainingCommandHandler
    from edge_agent.mqtt.inbound import InboundKind, InboundMessage

    windows, starts = _log()
    store_path = tmp_path / "buffer" / "fl-windows.db"
    with WindowStore(store_path) as store:
        store.add_log(
            log_id="l1",
            rider_id="r9",
            windows=windows,
            starts_s=starts,
            airbag_offsets_s=[20.0],
        )
    handler = TrainingCommandHandler(store_path)
    topic = "gateways/gw-1/commands"
    consent = _command("training_consent", rider_id="r9", opted_out=True)
    handler(InboundMessage(InboundKind.COMMAND, topic, consent, False))
    other = _command("config_change", settings={})
    handler(InboundMessage(InboundKind.COMMAND, topic, other, False))
    announce = {"schema": "model-announce/1", "model_name": "m", "version": "2"}
    handler(
        InboundMessage(InboundKind.MODEL_ANNOUNCE, "models/m/announce", announce, True)
    )
    assert handler.applied == 1
    with WindowStore(store_path) as store:
        assert store.counts().labelled == 0 and store.opted_out("r9")
    bad = _command("training_consent", rider_id="r9")
    with pytest.raises(CommandError, match="opted_out"):
        handler(InboundMessage(InboundKind.COMMAND, topic, bad, False))
