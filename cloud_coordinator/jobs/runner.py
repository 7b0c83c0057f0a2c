"""Background jobs of the API: a job row in the catalog, work in a thread pool.

:meth:`JobRunner.submit` stores a ``queued`` job and hands it to a small
thread pool; the worker marks it ``running``, runs the gateway pipeline on
the stored file (:class:`~.analytics.StoredLogProcessor`) and stores
``succeeded`` with the result (object ids, keys, server-side seconds) or
``failed`` with a message naming the file and the problem. Clients poll
``GET /api/v1/jobs/{id}``; any API process answers, since the state lives
in the catalog.

Each worker thread loads its own crash detector once (a TFLite interpreter
is not shared between threads). A job still queued or running when its
process stops is left in that state: submit a new one (the work is
idempotent, so nothing is duplicated).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from edge_agent.ingest import UnitOptions
from edge_agent.processing import (
    SOFTWARE_VERSION,
    BadInputError,
    CrashDetector,
    ProcessingError,
)
from edge_agent.upload import (
    BucketNames,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    Uploader,
    UploadJournal,
    UploadSettings,
)
from edge_agent.upload.factory import etags_are_body_md5

from ..catalog import Catalog, JobRecord, JobState
from ..catalog.sqlbase import utc_now
from .analytics import AnalyticsSource, StoredLogProcessor

__all__ = ["ANALYTICS_JOB", "DEFAULT_JOB_WORKERS", "JobRequest", "JobRunner"]

_LOGGER = logging.getLogger(__name__)

ANALYTICS_JOB = "analytics"
# One job at a time per API process: processing a 50 MB log takes a few
# seconds of both cores' time; more workers only make each job slower.
DEFAULT_JOB_WORKERS = 1

DetectorFactory = Callable[[], CrashDetector | None]


@dataclass(frozen=True)
class JobRequest:
    """What to process, for whom, and how to read a CSV without units."""

    source: AnalyticsSource
    requested_by: str
    units: UnitOptions | None = None
    columns: Mapping[str, str] | None = None


class JobRunner:
    """Run analytics jobs in background threads; see the module docstring."""

    def __init__(
        self,
        catalog: Catalog,
        store: ObjectStore,
        buckets: BucketNames,
        *,
        scratch_dir: Path,
        workers: int = DEFAULT_JOB_WORKERS,
        detector_factory: DetectorFactory = CrashDetector.shipped,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """Prepare the pool; threads start with the first job.

        Raises:
            ValueError: fewer than one worker.
        """
        if workers < 1:
            raise ValueError(f"job runner: workers {workers} must be >= 1")
        self._catalog = catalog
        self._store = store
        self._buckets = buckets
        self._scratch = Path(scratch_dir)
        self._scratch.mkdir(parents=True, exist_ok=True)
        self._detector_factory = detector_factory
        self._clock = clock
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="job")
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def submit(self, request: JobRequest) -> JobRecord:
        """Store a queued job for ``request`` and start it; return the job.

        Raises:
            CatalogError: the job could not be stored (nothing runs).
        """
        now = self._clock()
        source = request.source
        job = self._catalog.insert_job(
            JobRecord(
                job_id=uuid.uuid4().hex,
                kind=ANALYTICS_JOB,
                state=JobState.QUEUED,
                requested_by=request.requested_by,
                rider_id=source.rider_id,
                suit_id=source.suit_id,
                source_bucket=source.bucket,
                source_key=source.key,
                created_at=now,
                updated_at=now,
                log_id=source.log_id,
            )
        )
        future = self._pool.submit(self._run, job, request)
        with self._lock:
            self._futures[job.job_id] = future
        future.add_done_callback(lambda _: self._forget(job.job_id))
        _LOGGER.info(
            "job %s: analytics of %s/%s queued for %s",
            job.job_id,
            source.bucket,
            source.key,
            request.requested_by,
        )
        return job

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._futures.pop(job_id, None)

    def wait(self, job_id: str, timeout_s: float | None = None) -> None:
        """Block until a job this runner started has finished (tests, CLI)."""
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout=timeout_s)

    def _processor(self) -> StoredLogProcessor:
        """Return this thread's processor, loading its detector once."""
        processor: StoredLogProcessor | None = getattr(self._local, "processor", None)
        if processor is None:
            name = threading.current_thread().name
            journal = UploadJournal(self._scratch / f"journal-{name}.db")
            processor = StoredLogProcessor(
                self._catalog,
                self._store,
                self._buckets,
                Uploader(
                    self._store,
                    journal,
                    UploadSettings(verify_etag=etags_are_body_md5(self._store)),
                ),
                detector=self._detector_factory(),
                scratch_dir=self._scratch / name,
                software_version=SOFTWARE_VERSION,
                clock=self._clock,
            )
            self._local.processor = processor
        return processor

    def _run(self, job: JobRecord, request: JobRequest) -> None:
        job = self._catalog.update_job(
            replace(job, state=JobState.RUNNING, updated_at=self._clock())
        )
        source = request.source
        where = f"{source.bucket}/{source.key}"
        try:
            outcome = self._processor().process_object(
                source, units=request.units, columns=request.columns
            )
        except ObjectNotFound as exc:
            self._fail(job, f"{where} is not in the store: {exc}")
        except BadInputError as exc:
            self._fail(job, f"{where} cannot be processed: {exc}")
        except (ProcessingError, StorageError) as exc:
            self._fail(job, f"{where}: {exc}; submit the job again")
        except Exception as exc:
            _LOGGER.exception("job %s: unexpected error on %s", job.job_id, where)
            self._fail(job, f"{where}: internal error ({type(exc).__name__})")
        else:
            self._catalog.update_job(
                replace(
                    job,
                    state=JobState.SUCCEEDED,
                    updated_at=self._clock(),
                    log_id=outcome.log_id,
                    result=outcome.as_dict(),
                )
            )
            _LOGGER.info(
                "job %s: %s done as log %s in %.2f s",
                job.job_id,
                where,
                outcome.log_id,
                outcome.seconds.get("total", 0.0),
            )

    def _fail(self, job: JobRecord, message: str) -> None:
        _LOGGER.error("job %s: failed: %s", job.job_id, message)
        self._catalog.update_job(
            replace(job.with_error(message), updated_at=self._clock())
        )

    def close(self) -> None:
        """Finish running jobs and stop the threads."""
        self._pool.shutdown(wait=True, cancel_futures=True)
