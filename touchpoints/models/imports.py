"""Channel imports (聚流量): source mappings, import jobs, their row errors and history."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from scrm.org.scoping import Scope, ScopedQuerySet


class ImportKind(models.TextChoices):
    MEMBERS = "members", _("Members")
    ORDERS = "orders", _("Orders")


class ImportSource(models.TextChoices):
    TMALL = "tmall", _("Tmall")
    JD = "jd", _("JD")
    MEITUAN = "meituan", _("Meituan / Ele.me")
    POS = "pos", _("Store POS")
    MINI_PROGRAM = "mini_program", _("Mini-program")
    GENERIC = "generic", _("Generic template")


class ImportMapping(models.Model):
    """How one source names our fields: field → the column headers that source uses."""

    source = models.CharField(_("source"), max_length=20, choices=ImportSource.choices)
    kind = models.CharField(_("data"), max_length=10, choices=ImportKind.choices)
    columns = models.JSONField(
        _("columns"),
        default=dict,
        help_text=_("Our field → list of the source's column headers that mean it."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    class Meta:
        ordering = ["kind", "source"]
        verbose_name = _("import mapping")
        verbose_name_plural = _("import mappings")
        constraints = [
            models.UniqueConstraint(fields=["source", "kind"], name="mapping_source_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} · {self.get_kind_display()}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class ImportJob(models.Model):
    """One uploaded file being imported, chunk by chunk.

    Each chunk's rows, its error lines, the counters and `rows_done` commit in one
    transaction, so a job interrupted anywhere resumes from `rows_done` without
    duplicating or losing a row.
    """

    kind = models.CharField(_("data"), max_length=10, choices=ImportKind.choices)
    source = models.CharField(_("source"), max_length=20, choices=ImportSource.choices)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    size_bytes = models.BigIntegerField(_("size"), default=0)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    rows_total = models.PositiveIntegerField(_("rows (estimated)"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    merged = models.PositiveIntegerField(_("merged"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    to_review = models.PositiveIntegerField(_("sent to review"), default=0)
    error = models.TextField(_("error"), blank=True)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    lease_until = models.DateTimeField(_("worker lease until"), null=True, blank=True)
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    store = models.ForeignKey(
        "org.Store",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("store"),
        help_text=_("Set when a store uploads its own file."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    scope: ClassVar[Scope] = Scope(store="store", region=("store__region",))
    objects = ScopedQuerySet["ImportJob"].as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED}

    @property
    def rows_read(self) -> int:
        """Data rows read so far. `rows_done` is the last row number as the spreadsheet
        shows it, and the header is row 1; `rows_total` counts data rows only."""
        return max(0, self.rows_done - 1)

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(99, int(self.rows_read * 100 / self.rows_total))


class ImportRowError(models.Model):
    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row_number = models.PositiveIntegerField(_("row"))
    column = models.CharField(_("column"), max_length=100, blank=True)
    value = models.CharField(_("value"), max_length=200, blank=True)
    reason = models.CharField(_("reason"), max_length=300)

    class Meta:
        ordering = ["row_number", "pk"]
        verbose_name = _("import row error")
        verbose_name_plural = _("import row errors")
        indexes = [models.Index(fields=["job", "row_number"], name="import_error_row_idx")]

    def __str__(self) -> str:
        return f"row {self.row_number}: {self.reason}"


class ImportEvent(models.Model):
    """What happened to a job, in words: started, resumed after a lost worker, cancelled…"""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(_("time"), auto_now_add=True)
    message = models.CharField(_("message"), max_length=300)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("import event")
        verbose_name_plural = _("import events")

    def __str__(self) -> str:
        return self.message
