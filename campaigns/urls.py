from django.urls import path

from campaigns.api.views import InboxListApi, InboxReadApi

api_urlpatterns = [
    path("me/messages", InboxListApi.as_view(), name="me-messages"),
    path("me/messages/<int:message_id>/read", InboxReadApi.as_view(), name="me-message-read"),
]
