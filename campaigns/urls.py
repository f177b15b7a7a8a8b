from django.urls import path

from campaigns.api.views import InboxListApi, InboxReadApi
from campaigns.views import hq

api_urlpatterns = [
    path("me/messages", InboxListApi.as_view(), name="me-messages"),
    path("me/messages/<int:message_id>/read", InboxReadApi.as_view(), name="me-message-read"),
]

hq_urlpatterns = [
    path("broadcasts/", hq.broadcast_list, name="broadcasts"),
    path("broadcasts/new/", hq.broadcast_new, name="broadcast-new"),
    path("broadcasts/<int:pk>/", hq.broadcast_detail, name="broadcast"),
    path("broadcasts/<int:pk>/<str:action>/", hq.broadcast_action, name="broadcast-action"),
]
