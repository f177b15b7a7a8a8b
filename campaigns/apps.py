from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        from members.signals import member_registered

        def credit_referral(sender: object, *, member: object, **kwargs: object) -> None:
            from campaigns.services.referrals import referral_credit_after_registration

            referral_credit_after_registration(invitee=member)  # type: ignore[arg-type]

        member_registered.connect(
            credit_referral, weak=False, dispatch_uid="campaigns.referral_credit"
        )

        from campaigns.services.consent import consent_merge_move, consent_merge_restore
        from members.services.merge import MERGE_MOVERS, MergeMover

        # Consent is decided per person: a merge carries the latest decisions over as new
        # ledger entries (the ledger never moves), and undo gives each their own back.
        MERGE_MOVERS["consents"] = MergeMover("consents", consent_merge_move, consent_merge_restore)

        from campaigns.selectors.consent import PROFILING_WITHDRAWN_SQL
        from members.segments.rules import register_profiling_withdrawn

        # Auto-tag rules on behaviour leave out (and untag) who withdrew profiling.
        register_profiling_withdrawn(PROFILING_WITHDRAWN_SQL)

        from campaigns.models import Referral
        from members.services.key_rotation import register_phone_digest_column

        # A referral keeps the invitee's phone digest: a key rotation re-keys it too.
        register_phone_digest_column(Referral, "invitee_phone")
