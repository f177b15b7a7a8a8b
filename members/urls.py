from django.urls import path

from members.views import mobile

mobile_urlpatterns = [
    path("", mobile.home, name="home"),
]
