from django.urls import path

from scrm.org.api.views import MeApi, StoreListApi
from scrm.org.views import hq

hq_urlpatterns = [
    path("org/stores/", hq.store_list, name="stores"),
    path("org/staff/", hq.staff_list, name="staff"),
]

api_urlpatterns = [
    path("org/stores/", StoreListApi.as_view(), name="store-list"),
    path("staff/me/", MeApi.as_view(), name="staff-me"),
]
