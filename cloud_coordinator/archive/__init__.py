"""Archive upload: on-premise files stored as they are, then processed.

See :mod:`.upload` and ``cloud-coordinator upload-archive`` (:mod:`.cli`).
"""

from .upload import ARCHIVE_KIND, ArchiveReport, default_upload_id, upload_archive

__all__ = ["ARCHIVE_KIND", "ArchiveReport", "default_upload_id", "upload_archive"]
