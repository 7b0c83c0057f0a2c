"""The API's routers, one module per resource."""

from .blobs import router as blobs_router
from .logs import router as logs_router
from .objects import router as objects_router
from .riders import router as riders_router
from .system import router as system_router

__all__ = [
    "blobs_router",
    "logs_router",
    "objects_router",
    "riders_router",
    "system_router",
]
