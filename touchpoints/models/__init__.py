from touchpoints.models.imports import (
    ImportEvent,
    ImportJob,
    ImportKind,
    ImportMapping,
    ImportRowError,
    ImportSource,
    ImportStatus,
)

__all__ = [
    "ImportEvent",
    "ImportJob",
    "ImportKind",
    "ImportMapping",
    "ImportRowError",
    "ImportSource",
    "ImportStatus",
]
