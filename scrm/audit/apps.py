from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "scrm.audit"
    label = "audit"
    verbose_name = _("Audit trail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun
        from django.db.backends.signals import connection_created

        from scrm.audit import context

        context.configure_process()
        connection_created.connect(context.on_connection_created, dispatch_uid="audit_origin")
        task_prerun.connect(context.on_task_prerun, dispatch_uid="audit_task_prerun")
        task_postrun.connect(context.on_task_postrun, dispatch_uid="audit_task_postrun")
