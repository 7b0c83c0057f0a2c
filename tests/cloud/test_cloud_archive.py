"""upload-archive: files stored as they are, processed, catalogued; resume on S3."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from cloud_coordinator.archive import default_upload_id, upload_archive
from cloud_coordinator.catalog import (
    ObjectFilter,
    ObjectKind,
    SqliteCatalog,
    iter_pages,
)
from cloud_coordinator.cli import main
from cloud_coordinator.notify import NotificationAudience, NotificationType
from edge_agent.upload import (
    BucketNames,
    ObjectStoreUnavailable,
    S3Store,
)
from firmware_bridge.synth.api import ride_log_path, write_ride
from firmware_bridge.synth.spec import RideSpec
from tests.support.seaweed import SeaweedS3

EXIT_REJECTED = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A crash ride log, a CSV export without units, a broken log, a bad name."""
    root = tmp_path_factory.mktemp("onprem")
    spec = RideSpec(
        seed=7,
        scenario="city",
        riding_s=40,
        sample_rate_hz=200,
        walk_before_s=3,
        walk_after_s=3,
        crash="highside",
        crash_at_s=25,
        suit_serial="SUIT-A",
    )
    write_ride(spec, ride_log_path(spec, root))
    rng = np.random.default_rng(2)
    rows = ["Time;Ax;Ay;Az;Gx;Gy;Gz"]
    for index in range(3000):
        ax, ay, gx, gy, gz = rng.normal(0, 0.05, 5)
        rows.append(f"{index * 10};{ax:.4f};{ay:.4f};1.0;{gx:.3f};{gy:.3f};{gz:.3f}")
    (root / "export 2019.csv").write_text("\n".join(rows) + "\n")
    (root / "broken.slog").write_bytes(b"\0not a suit log" * 64)
    (root / "bad\\name.csv").write_text("Time,Ax\n0,1\n")
    for name in root.iterdir():
        if name.suffix == ".json":  # the synthesiser's truth file
            name.unlink()
    return root


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "coordinator.toml"
    config.write_text(
        '[catalog]\nurl = "sqlite:catalog.db"\n[store]\nroot = "store"\n'
        '[archive]\nstate_dir = "state"\n'
    )
    return config


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_archive_cli_stores_processes_and_quarantines(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    args = [
        "--config", str(config), "upload-archive", "--rider", "r1", "--suit",
        "SUIT-A", "--time-unit", "ms", "--accel-unit", "g", "--gyro-unit",
        "deg/s", "--no-progress", str(folder),
    ]  # fmt: skip
    assert main(args) == EXIT_REJECTED
    out = capsys.readouterr().out
    assert "rejected broken.slog:" in out and "rejected bad\\name.csv:" in out

    upload_id = default_upload_id("r1", "SUIT-A", folder)
    archive = tmp_path / "store" / "archive" / "r1" / "SUIT-A" / upload_id
    stored = {path.name for path in archive.iterdir() if not path.name.startswith(".")}
    stored = {name for name in stored if (archive / name).is_file()}
    originals = {p.name for p in folder.iterdir() if p.name != "bad\\name.csv"}
    assert originals <= stored
    for name in originals:
        assert _sha((archive / name).read_bytes()) == _sha((folder / name).read_bytes())

    quarantine = tmp_path / "state" / "quarantine" / upload_id
    assert "broken.slog" in (quarantine / "broken.slog.reason.txt").read_text()
    assert (quarantine / "broken.slog").read_bytes() == (
        folder / "broken.slog"
    ).read_bytes()

    catalog = SqliteCatalog(tmp_path / "catalog.db")
    rows = list(
        iter_pages(
            lambda c: catalog.list_objects(
                ObjectFilter(rider_id="r1"), limit=50, cursor=c
            ),
            max_pages=10,
        )
    )
    kinds = sorted(row.kind.value for row in rows)
    assert kinds == ["analytics", "analytics", "crash", "raw", "raw"]
    assert all(row.suit_id == "SUIT-A" for row in rows)
    crash_logs = {row.log_id for row in rows if row.kind is ObjectKind.CRASH}
    assert len(crash_logs) == 1
    audience = NotificationAudience(role="rider", rider_id="r1")
    notes = catalog.list_notifications(audience, after_seq=0, limit=20)
    ready = [n for n in notes if n.type is NotificationType.ANALYTICS_READY]
    assert len(ready) == 2

    # Running again resumes: nothing new is stored, catalogued or announced,
    # and files processed the same way before are not processed again.
    capsys.readouterr()
    assert main(args) == EXIT_REJECTED
    out = capsys.readouterr().out
    assert out.count("processed before (same file, software and model") == 2
    assert "samples" not in out
    again = list(
        iter_pages(
            lambda c: catalog.list_objects(
                ObjectFilter(rider_id="r1"), limit=50, cursor=c
            ),
            max_pages=10,
        )
    )
    assert {(r.object_id, r.sha256_hex) for r in again} == {
        (r.object_id, r.sha256_hex) for r in rows
    }
    assert len(catalog.list_notifications(audience, after_seq=0, limit=20)) == len(
        notes
    )
    # --reprocess runs them through the pipeline again: same results.
    assert main([*args[:-1], "--reprocess", args[-1]]) == EXIT_REJECTED
    assert capsys.readouterr().out.count("samples") == 2
    assert len(catalog.list_notifications(audience, after_seq=0, limit=20)) == len(
        notes
    )
    catalog.close()


def test_csv_without_units_is_quarantined_and_others_go_on(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path)
    code = main(
        ["--config", str(config), "upload-archive", "--rider", "r1", "--suit",
         "SUIT-A", "--no-progress", str(folder)]
    )  # fmt: skip
    assert code == EXIT_REJECTED
    out = capsys.readouterr().out
    assert "rejected export 2019.csv:" in out and "unit" in out
    assert " -> log " in out  # the suit log went through


class FailingOnce(S3Store):
    """SeaweedFS through S3, whose second part upload fails once."""

    failures_left = 1

    def upload_part(  # type: ignore[no-untyped-def]
        self, bucket, key, upload_id, part_number, data, checksum
    ):
        if part_number == 2 and self.failures_left:
            self.failures_left -= 1
            raise ObjectStoreUnavailable(f"upload {bucket}/{key}: link dropped")
        return super().upload_part(bucket, key, upload_id, part_number, data, checksum)


def test_interrupted_multipart_upload_resumes_on_seaweedfs(
    seaweed_s3: SeaweedS3, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    buckets = BucketNames(
        raw=f"raw-{suffix}",
        analytics=f"an-{suffix}",
        crash=f"cr-{suffix}",
        archive=f"ar-{suffix}",
    )
    store = FailingOnce.connect(
        seaweed_s3.endpoint_url,
        access_key_id=seaweed_s3.access_key_id,
        secret_access_key=seaweed_s3.secret_access_key,
        region=seaweed_s3.region,
    )
    big = tmp_path / "onprem" / "dump.bin"
    big.parent.mkdir()
    big.write_bytes(os.urandom(20 * 1024 * 1024))  # three 8 MiB parts
    catalog = SqliteCatalog(tmp_path / "catalog.db")
    catalog.migrate()
    kwargs = dict(
        catalog=catalog,
        store=store,
        buckets=buckets,
        state_dir=tmp_path / "state",
        detector=None,
    )
    with pytest.raises(ObjectStoreUnavailable):
        upload_archive(big.parent, "r9", "SUIT-Z", **kwargs)  # type: ignore[arg-type]
    assert store.list_multipart_uploads(buckets.archive)

    report = upload_archive(
        big.parent,
        "r9",
        "SUIT-Z",
        **kwargs,  # type: ignore[arg-type]
    )
    assert report.parts_reused == 1 and report.parts_sent == 2
    key = report.uploaded["dump.bin"].key
    assert _sha(store.get_object(buckets.archive, key)) == _sha(big.read_bytes())
    assert store.list_multipart_uploads(buckets.archive) == []
    # Random bytes are no suit log: quarantined, nothing catalogued.
    assert set(report.quarantined) == {"dump.bin"}
    assert catalog.list_objects(ObjectFilter(), limit=5).items == []
    catalog.close()
