from django.db import models
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class AuditAction(models.TextChoices):
    # Written by the database triggers.
    INSERT = "insert", pgettext_lazy("audit action", "Created")
    UPDATE = "update", _("Changed")
    DELETE = "delete", _("Deleted")
    # Written by the application.
    UNMASK = "unmask", _("Full phone shown")
    EXPORT = "export", _("Personal data exported")
    ERASE = "erase", _("Personal data erased")
    REKEY = "rekey", _("Phone key rotated")


class AuditEvent(models.Model):
    """One change to an audited row, or one access to personal data.

    Append-only. The actor is kept as an id and a label (not a foreign key) so the trail
    outlives the staff account; `member_id` names the person the event is about, so a
    member's whole history (and its erasure) is one indexed lookup.
    """

    at = models.DateTimeField(_("when"), db_default=Now(), db_index=True)
    action = models.CharField(_("action"), max_length=10, choices=AuditAction.choices)
    table = models.CharField(_("table"), max_length=63, blank=True)
    row_id = models.CharField(_("row"), max_length=64, blank=True)
    member_id = models.BigIntegerField(_("member"), null=True, blank=True)
    actor_id = models.BigIntegerField(_("staff id"), null=True, blank=True)
    actor_label = models.CharField(_("by"), max_length=150, blank=True)
    # Changed columns only: {"column": value} before and after.
    old = models.JSONField(_("before"), null=True, blank=True)
    new = models.JSONField(_("after"), null=True, blank=True)
    # Where it came from: request path, command or task name.
    origin = models.CharField(_("origin"), max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["member_id", "at"], name="audit_member_idx"),
            models.Index(fields=["table", "row_id"], name="audit_row_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.table} {self.row_id}".strip()
