from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TouchpointsConfig(AppConfig):
    name = "touchpoints"
    verbose_name = _("Touchpoints")

    def ready(self) -> None:
        from touchpoints import segment_fields

        segment_fields.register()
        # A merge moves the person's behaviour, surveys and tickets to the kept member
        # (and an undo moves them back), like every other relation to a member.
        from members.services.merge import register_merge_mover
        from touchpoints.models import BehaviourEvent, SurveyInvitation, SurveyResponse, Ticket

        register_merge_mover("behaviour_events", BehaviourEvent)
        register_merge_mover("survey_invitations", SurveyInvitation)
        register_merge_mover("survey_responses", SurveyResponse)
        register_merge_mover("tickets", Ticket)
