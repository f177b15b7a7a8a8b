from django.urls import path

from touchpoints.api.views import EventBatchApi, SurveyAnswerApi, SurveyListApi
from touchpoints.views import channels, feedback, health, hq

hq_urlpatterns = [
    path("touchpoints/", channels.touchpoint_list, name="touchpoints"),
    path("touchpoints/new/", channels.touchpoint_edit, name="touchpoint-new"),
    path("touchpoints/health/", health.health, name="touchpoint-health"),
    path("feedback/", feedback.feedback, name="feedback"),
    path("tickets/", feedback.tickets, name="tickets"),
    path("tickets/<int:pk>/", feedback.ticket_detail, name="ticket"),
    path("touchpoints/alerts/<int:pk>/ack/", health.alert_ack, name="touchpoint-alert-ack"),
    path("touchpoints/<int:pk>/", channels.touchpoint_detail, name="touchpoint"),
    path("touchpoints/<int:pk>/edit/", channels.touchpoint_edit, name="touchpoint-edit"),
    path("touchpoints/<int:pk>/qr/", channels.qr_code_edit, name="qr-edit"),
    path("touchpoints/<int:pk>/qr.<str:file_format>", channels.qr_code_image, name="qr-image"),
    path("channels/new/", channels.channel_edit, name="channel-new"),
    path("channels/<int:pk>/", channels.channel_edit, name="channel-edit"),
    path("event-clients/", channels.event_clients, name="event-clients"),
    path("event-clients/<int:pk>/off/", channels.event_client_off, name="event-client-off"),
    path("imports/", hq.imports, name="imports"),
    path("imports/<int:job_id>/", hq.import_detail, name="import-detail"),
    path("imports/<int:job_id>/cancel/", hq.import_cancel, name="import-cancel"),
    path(
        "imports/<int:job_id>/errors.<str:file_format>",
        hq.import_error_report,
        name="import-errors",
    ),
    path("imports/template/<str:kind>.csv", hq.import_template, name="import-template"),
    path("imports/mappings/", hq.mapping_list, name="import-mappings"),
    path("imports/mappings/<int:mapping_id>/", hq.mapping_edit, name="import-mapping-edit"),
]

api_urlpatterns = [
    path("events", EventBatchApi.as_view(), name="events"),
    path("me/surveys", SurveyListApi.as_view(), name="me-surveys"),
    path("me/surveys/<int:invitation_id>", SurveyAnswerApi.as_view(), name="me-survey-answer"),
]

public_urlpatterns = [
    path("q/<str:token>", channels.qr_landing, name="qr-landing"),
]
