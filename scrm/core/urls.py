from django.urls import path

from scrm.core.views import hq

hq_urlpatterns = [
    path("", hq.home, name="home"),
    path("system/", hq.system_status, name="system"),
    path("system/ping/", hq.worker_ping, name="worker-ping"),
    path("notifications/read/", hq.notifications_read, name="notifications-read"),
]
