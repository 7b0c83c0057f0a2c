"""The results API (FastAPI): data listings, analytics, download links, riders.

:func:`create_app` builds the app from an :class:`ApiServices`; see
:mod:`.app` for the routes, :mod:`.security` for roles and scoping,
:mod:`.downloads` for download links and :mod:`.errors` for the mapping of
errors to HTTP statuses.
"""

from .app import create_app
from .downloads import (
    AzureSasPresigner,
    DownloadLink,
    LinkRejected,
    LocalPresigner,
    Presigner,
    S3Presigner,
    derive_link_key,
)
from .services import ApiServices, ApiSettings

__all__ = [
    "ApiServices",
    "ApiSettings",
    "AzureSasPresigner",
    "DownloadLink",
    "LinkRejected",
    "LocalPresigner",
    "Presigner",
    "S3Presigner",
    "create_app",
    "derive_link_key",
]
