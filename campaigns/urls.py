from django.urls import URLPattern, URLResolver, path

from campaigns.api.views import InboxListApi, InboxReadApi
from campaigns.views import funnel, hq, links, materials, mobile

api_urlpatterns = [
    path("me/messages", InboxListApi.as_view(), name="me-messages"),
    path("me/messages/<int:message_id>/read", InboxReadApi.as_view(), name="me-message-read"),
]

hq_urlpatterns = [
    path("broadcasts/", hq.broadcast_list, name="broadcasts"),
    path("broadcasts/new/", hq.broadcast_new, name="broadcast-new"),
    path("broadcasts/<int:pk>/", hq.broadcast_detail, name="broadcast"),
    # The funnel (全监控), before the actions: "funnel" is not an action.
    path("broadcasts/<int:pk>/funnel/", funnel.broadcast_funnel, name="broadcast-funnel"),
    path("broadcasts/<int:pk>/<str:action>/", hq.broadcast_action, name="broadcast-action"),
    path("materials/", materials.material_list, name="materials"),
    path("materials/new/", materials.material_new, name="material-new"),
    path("materials/preview/", materials.material_preview_view, name="material-preview"),
    path("materials/<int:pk>/", materials.material_detail, name="material"),
    path("materials/<int:pk>/edit/", materials.material_edit, name="material-edit"),
    path("materials/<int:pk>/delete/", materials.material_delete, name="material-delete"),
]

# Reached by members from outside the back office (tracked links in messages).
public_urlpatterns: list[URLPattern | URLResolver] = [
    path("l/<str:token>", links.tracked_link, name="tracked-link"),
]

mobile_urlpatterns = [
    path("broadcasts/", mobile.send_task_list, name="send-tasks"),
    path("broadcasts/<int:task_id>/", mobile.send_task_detail, name="send-task"),
    path("broadcasts/<int:task_id>/sent/", mobile.send_task_confirm, name="send-task-confirm"),
    path(
        "customers/<int:member_id>/replies/",
        materials.customer_quick_replies,
        name="customer-replies",
    ),
]

# Referrals (裂变): the member's invite code and accepting an invite.
from campaigns.api.referrals import MyReferralApi, ReferralClaimApi  # noqa: E402

api_urlpatterns += [
    path("me/referral", MyReferralApi.as_view(), name="me-referral"),
    path("me/referral/claim", ReferralClaimApi.as_view(), name="me-referral-claim"),
]

# Campaigns from templates, with automated journeys.
from campaigns.views import journeys  # noqa: E402

hq_urlpatterns += [
    path("campaigns/", journeys.campaign_list, name="campaigns"),
    path("campaigns/new/", journeys.campaign_new, name="campaign-new"),
    path("campaigns/compare/", funnel.campaign_compare, name="campaign-compare"),
    path("campaigns/<int:pk>/", journeys.campaign_detail, name="campaign"),
    # Before the actions: "edit" and "steps" are not actions.
    path("campaigns/<int:pk>/edit/", journeys.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:pk>/steps/", journeys.campaign_steps, name="campaign-steps"),
    path("campaigns/<int:pk>/funnel/", funnel.campaign_funnel, name="campaign-funnel"),
    path("campaigns/<int:pk>/<str:action>/", journeys.campaign_action, name="campaign-action"),
]

# Consent (PIPL): the member's decisions, the guide-assisted form, unsubscribe links.
from campaigns.api.consent import MyConsentsApi  # noqa: E402
from campaigns.views import consent  # noqa: E402

api_urlpatterns += [path("me/consents", MyConsentsApi.as_view(), name="me-consents")]
mobile_urlpatterns += [
    path(
        "customers/<int:member_id>/consents/", consent.customer_consents, name="customer-consents"
    ),
    path(
        "customers/<int:member_id>/consents/record/",
        consent.customer_consent_record,
        name="customer-consent-record",
    ),
]
public_urlpatterns += [path("u/<str:token>", consent.unsubscribe_page, name="unsubscribe")]
hq_urlpatterns += [
    path(
        "members/<int:member_id>/consents/record/",
        consent.hq_consent_record,
        name="member-consent-record",
    )
]

# The SMS provider's push of replies (TD, 退订 …): withdraws marketing by SMS.
from campaigns.views import sms_hooks  # noqa: E402

public_urlpatterns += [path("hooks/sms/inbound", sms_hooks.sms_inbound, name="sms-inbound")]
