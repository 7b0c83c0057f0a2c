"""Uploader behaviour (idempotence, multipart resume, orphans), on every backend."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from upload_helpers import MIB, CountingStore, metadata_for, write_random_file

from edge_agent.custody import CustodyBuffer, LogState
from edge_agent.upload import (
    BodyChecksum,
    BucketNames,
    ChecksumMode,
    IntegrityError,
    LocalDirStore,
    ObjectLayout,
    ObjectMetadata,
    ObjectRef,
    ObjectStore,
    S3Store,
    Uploader,
    UploadJournal,
    UploadSettings,
    upload_log,
)
from edge_agent.upload.azure import AzureBlobStore
from tests.support.azurite import AzuriteBlob
from tests.support.seaweed import SeaweedS3

# 5 MiB parts (the S3 minimum) keep multipart tests small.
SMALL_PARTS = UploadSettings(multipart_threshold_bytes=8 * MIB, part_size_bytes=5 * MIB)


class SimulatedCrash(BaseException):
    """Stands for the process dying at a chosen point."""


def _crash_after(part: int) -> Callable[[ObjectRef, int, int], None]:
    def hook(ref: ObjectRef, number: int, count: int) -> None:
        if number == part:
            raise SimulatedCrash

    return hook


class UploaderContract:
    """Uploader rules every backend must support; subclasses give a store."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        raise NotImplementedError

    @pytest.fixture
    def bucket(self, store: ObjectStore) -> str:
        name = f"upl-{uuid.uuid4().hex[:10]}"
        store.ensure_bucket(name)
        return name

    @pytest.fixture
    def journal(self, tmp_path: Path) -> Iterator[UploadJournal]:
        with UploadJournal(tmp_path / "journal.db") as journal:
            yield journal

    def _sha256_of_object(self, store: ObjectStore, ref: ObjectRef) -> str:
        return hashlib.sha256(store.get_object(ref.bucket, ref.key)).hexdigest()

    def test_small_file_is_one_put_with_full_metadata(
        self, store: ObjectStore, bucket: str, journal: UploadJournal, tmp_path: Path
    ) -> None:
        source = tmp_path / "L1.json"
        sha = write_random_file(source, 20_000)
        ref = ObjectRef(bucket, "rider-7/SUIT-0001/L1.json")

        result = Uploader(store, journal).upload_file(ref, source, metadata_for(sha))

        assert (result.parts_sent, result.already_present) == (1, False)
        info = store.head_object(bucket, ref.key)
        assert info is not None
        assert info.content_type == "application/json"
        assert ObjectMetadata.from_s3(info.metadata) == metadata_for(sha)
        assert self._sha256_of_object(store, ref) == sha

    def test_retry_of_a_complete_upload_sends_nothing(
        self, store: ObjectStore, bucket: str, journal: UploadJournal, tmp_path: Path
    ) -> None:
        source = tmp_path / "L1.csv.gz"
        sha = write_random_file(source, 12 * MIB)
        ref = ObjectRef(bucket, "a/L1.csv.gz")
        Uploader(store, journal, SMALL_PARTS).upload_file(
            ref, source, metadata_for(sha)
        )

        counting = CountingStore(store)
        again = Uploader(counting, journal, SMALL_PARTS).upload_file(
            ref, source, metadata_for(sha)
        )

        assert again.already_present
        assert (counting.puts, counting.creates, counting.parts_sent) == (0, 0, [])

    def test_changed_file_is_refused_before_any_request(
        self, store: ObjectStore, bucket: str, journal: UploadJournal, tmp_path: Path
    ) -> None:
        source = tmp_path / "L1.csv.gz"
        write_random_file(source, 1000)
        counting = CountingStore(store)
        with pytest.raises(IntegrityError, match="file changed"):
            Uploader(counting, journal).upload_file(
                ObjectRef(bucket, "k"), source, metadata_for("0" * 64)
            )
        assert (counting.puts, counting.creates) == (0, 0)

    def test_multipart_upload_of_a_large_file(
        self, store: ObjectStore, bucket: str, journal: UploadJournal, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.csv.gz"
        sha = write_random_file(source, 12 * MIB + 17)
        ref = ObjectRef(bucket, "r/s/2026/05/01/big.csv.gz")
        counting = CountingStore(store)

        result = Uploader(counting, journal, SMALL_PARTS).upload_file(
            ref, source, metadata_for(sha)
        )

        assert counting.parts_sent == [1, 2, 3]
        assert result.etag.endswith("-3")
        assert self._sha256_of_object(store, ref) == sha
        assert journal.find(bucket, ref.key) is None
        assert store.list_multipart_uploads(bucket) == []

    @pytest.mark.parametrize("mode", list(ChecksumMode))
    def test_every_checksum_mode_uploads(
        self,
        store: ObjectStore,
        bucket: str,
        journal: UploadJournal,
        tmp_path: Path,
        mode: ChecksumMode,
    ) -> None:
        source = tmp_path / "big.bin"
        sha = write_random_file(source, 11 * MIB)
        ref = ObjectRef(bucket, f"modes/{mode}.bin")
        settings = UploadSettings(
            multipart_threshold_bytes=8 * MIB,
            part_size_bytes=5 * MIB,
            checksum_mode=mode,
        )
        Uploader(store, journal, settings).upload_file(ref, source, metadata_for(sha))
        assert self._sha256_of_object(store, ref) == sha

    def test_crash_between_parts_resumes_with_missing_parts_only(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.csv.gz"
        sha = write_random_file(source, 16 * MIB)
        ref = ObjectRef(bucket, "resume/big.csv.gz")
        journal_path = tmp_path / "journal.db"

        with UploadJournal(journal_path) as journal, pytest.raises(SimulatedCrash):
            Uploader(
                store,
                journal,
                SMALL_PARTS,
                on_part_done=_crash_after(2),
            ).upload_file(ref, source, metadata_for(sha))

        counting = CountingStore(store)
        with UploadJournal(journal_path) as journal:
            entry = journal.find(bucket, ref.key)
            assert entry is not None
            assert sorted(journal.parts(entry.upload_id)) == [1, 2]
            result = Uploader(counting, journal, SMALL_PARTS).upload_file(
                ref, source, metadata_for(sha)
            )

        assert counting.parts_sent == [3, 4]
        assert (result.parts_sent, result.parts_reused) == (2, 2)
        assert counting.creates == 0
        assert self._sha256_of_object(store, ref) == sha
        assert store.list_multipart_uploads(bucket) == []

    def test_part_acknowledged_but_not_journalled_is_reused(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        sha = write_random_file(source, 16 * MIB)
        ref = ObjectRef(bucket, "ack/big.bin")
        journal_path = tmp_path / "journal.db"

        def die_after_third(number: int) -> None:
            if number == 3:
                raise SimulatedCrash  # the store has part 3, the journal not

        with UploadJournal(journal_path) as journal, pytest.raises(SimulatedCrash):
            Uploader(
                CountingStore(store, after_part=die_after_third), journal, SMALL_PARTS
            ).upload_file(ref, source, metadata_for(sha))

        counting = CountingStore(store)
        with UploadJournal(journal_path) as journal:
            result = Uploader(counting, journal, SMALL_PARTS).upload_file(
                ref, source, metadata_for(sha)
            )
        assert counting.parts_sent == [4]
        assert result.parts_reused == 3
        assert self._sha256_of_object(store, ref) == sha

    def test_orphaned_upload_of_the_key_is_aborted(
        self, store: ObjectStore, bucket: str, journal: UploadJournal, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        sha = write_random_file(source, 11 * MIB)
        ref = ObjectRef(bucket, "orphans/big.bin")
        orphan = store.create_multipart_upload(
            bucket, ref.key, metadata={}, checksum_mode=ChecksumMode.MD5
        )
        junk = b"j" * 1000
        store.upload_part(
            bucket, ref.key, orphan, 1, junk, BodyChecksum.of(junk, ChecksumMode.MD5)
        )

        result = Uploader(store, journal, SMALL_PARTS).upload_file(
            ref, source, metadata_for(sha)
        )

        assert result.uploads_aborted == 1
        assert store.list_multipart_uploads(bucket) == []
        assert self._sha256_of_object(store, ref) == sha

    def test_journalled_upload_for_other_bytes_is_aborted(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        old_sha = write_random_file(source, 16 * MIB)
        ref = ObjectRef(bucket, "changed/big.bin")
        journal_path = tmp_path / "journal.db"
        with UploadJournal(journal_path) as journal, pytest.raises(SimulatedCrash):
            Uploader(
                store,
                journal,
                SMALL_PARTS,
                on_part_done=_crash_after(1),
            ).upload_file(ref, source, metadata_for(old_sha))

        new_sha = write_random_file(source, 13 * MIB)
        counting = CountingStore(store)
        with UploadJournal(journal_path) as journal:
            result = Uploader(counting, journal, SMALL_PARTS).upload_file(
                ref, source, metadata_for(new_sha)
            )
        assert result.uploads_aborted == 1
        assert counting.parts_sent == [1, 2, 3]
        assert self._sha256_of_object(store, ref) == new_sha
        assert store.list_multipart_uploads(bucket) == []

    def test_upload_gone_from_store_starts_over(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        sha = write_random_file(source, 11 * MIB)
        ref = ObjectRef(bucket, "gone/big.bin")
        journal_path = tmp_path / "journal.db"
        with UploadJournal(journal_path) as journal, pytest.raises(SimulatedCrash):
            Uploader(
                store,
                journal,
                SMALL_PARTS,
                on_part_done=_crash_after(1),
            ).upload_file(ref, source, metadata_for(sha))
        [upload] = store.list_multipart_uploads(bucket)
        store.abort_multipart_upload(bucket, ref.key, upload.upload_id)

        counting = CountingStore(store)
        with UploadJournal(journal_path) as journal:
            Uploader(counting, journal, SMALL_PARTS).upload_file(
                ref, source, metadata_for(sha)
            )
        assert counting.creates == 1
        assert counting.parts_sent == [1, 2, 3]
        assert self._sha256_of_object(store, ref) == sha

    def test_orphan_sweep_keeps_journalled_uploads(
        self, store: ObjectStore, bucket: str, tmp_path: Path
    ) -> None:
        source = tmp_path / "big.bin"
        sha = write_random_file(source, 11 * MIB)
        ref = ObjectRef(bucket, "sweep/mine.bin")
        journal_path = tmp_path / "journal.db"
        with UploadJournal(journal_path) as journal, pytest.raises(SimulatedCrash):
            Uploader(
                store,
                journal,
                SMALL_PARTS,
                on_part_done=_crash_after(1),
            ).upload_file(ref, source, metadata_for(sha))
        for key in ("sweep/stray-1.bin", "sweep/stray-2.bin", "elsewhere/x.bin"):
            store.create_multipart_upload(
                bucket, key, metadata={}, checksum_mode=ChecksumMode.MD5
            )

        with UploadJournal(journal_path) as journal:
            uploader = Uploader(store, journal, SMALL_PARTS)
            assert uploader.abort_orphaned_uploads(bucket, "sweep/") == 0  # too young
            assert uploader.abort_orphaned_uploads(bucket, "sweep/", min_age_s=0) == 2
        left = sorted(u.key for u in store.list_multipart_uploads(bucket))
        assert left == ["elsewhere/x.bin", "sweep/mine.bin"]

    def test_processed_log_with_crash_goes_to_three_buckets(
        self, store: ObjectStore, journal: UploadJournal, tmp_path: Path
    ) -> None:
        suffix = uuid.uuid4().hex[:8]
        names = BucketNames(
            raw=f"raw-{suffix}",
            analytics=f"analytics-{suffix}",
            crash=f"crash-{suffix}",
        )
        for bucket in (names.raw, names.analytics, names.crash):
            store.ensure_bucket(bucket)
        layout = ObjectLayout(names)
        with CustodyBuffer.open(tmp_path / "custody") as buffer:
            raw = tmp_path / "L7.csv"
            raw.write_text("Time,Ax\n0,1\n")
            buffer.register_imported(raw, "SUIT-0001", "L7", rider_id="rider-7")
            folder = buffer.output_dir("L7")
            csv = folder / "L7.csv.gz"
            write_random_file(csv, 3000)
            windows = folder / "windows.npz"
            write_random_file(windows, 500)
            analytics_file = folder / "L7.json"
            analytics = {
                "schema": "ride-analytics/1",
                "start_utc": "2026-05-01T23:59:00+00:00",
                "end_utc": "2026-05-02T00:30:00+00:00",
                "samples": 1860000,
                "model": {"name": "crash", "version": "1.2.0", "sha256": "x"},
            }
            analytics_file.write_text(json.dumps(analytics))
            record = buffer.mark_processed(
                "L7",
                {"raw_csv": csv, "analytics": analytics_file, "crash_windows": windows},
                analytics,
                True,
            )

            keys = upload_log(
                Uploader(store, journal), record, layout, software_version="0.1.0"
            )
            uploaded = buffer.mark_uploaded("L7", keys)

        assert uploaded.state is LogState.UPLOADED
        assert keys == {
            "raw_csv": f"{names.raw}/rider-7/SUIT-0001/2026/05/01/L7.csv.gz",
            "analytics": f"{names.analytics}/rider-7/SUIT-0001/L7.json",
            "crash_raw_csv": f"{names.crash}/rider-7/SUIT-0001/L7/L7.csv.gz",
            "crash_windows": f"{names.crash}/rider-7/SUIT-0001/L7/windows.npz",
        }
        info = store.head_object(names.crash, "rider-7/SUIT-0001/L7/windows.npz")
        assert info is not None
        meta = ObjectMetadata.from_s3(info.metadata)
        assert (meta.kind, meta.model_version, meta.sample_count) == (
            "crash_windows",
            "1.2.0",
            1860000,
        )
        assert meta.sha256_hex == record.output_sha256["crash_windows"]


class TestUploaderOnLocalDirStore(UploaderContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalDirStore(tmp_path / "objects")


@pytest.mark.s3
class TestUploaderOnSeaweedFS(UploaderContract):
    @pytest.fixture
    def store(self, seaweed_s3: SeaweedS3) -> ObjectStore:
        return S3Store.connect(
            seaweed_s3.endpoint_url,
            access_key_id=seaweed_s3.access_key_id,
            secret_access_key=seaweed_s3.secret_access_key,
            region=seaweed_s3.region,
        )


class TestUploaderOnAzurite(UploaderContract):
    @pytest.fixture
    def store(self, azurite_blob: AzuriteBlob) -> ObjectStore:
        return AzureBlobStore.connect(connection_string=azurite_blob.connection_string)
