import pytest

from scrm.audit.models import AuditAction, AuditEvent
from scrm.audit.services import record_event

pytestmark = pytest.mark.django_db


def test_record_event_keeps_actor_as_id_and_label(django_user_model):
    staff = django_user_model.objects.create_user("auditor")
    event = record_event(
        AuditAction.UNMASK,
        actor=staff,
        member_id=42,
        table="members_member",
        row_id=42,
        detail={"field": "phone"},
        origin="/hq/members/42/",
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_id, stored.actor_label) == (staff.pk, "auditor")
    assert (stored.member_id, stored.row_id, stored.new) == (42, "42", {"field": "phone"})
    assert stored.at is not None
    staff.delete()
    assert AuditEvent.objects.get(pk=event.pk).actor_label == "auditor"


def test_record_event_without_actor_is_the_system():
    event = record_event(AuditAction.EXPORT, member_id=7)
    assert (event.actor_id, event.actor_label) == (None, "")
