from django.urls import path

from members.api import views as api
from members.views import hq, loyalty, mobile

hq_urlpatterns = [
    path("members/", hq.member_list, name="members"),
    path("members/export/", hq.member_export, name="member-export"),
    path("members/duplicates/", hq.duplicates, name="member-duplicates"),
    path("members/duplicates/<int:suggestion_id>/merge/", hq.merge_confirm, name="member-merge"),
    path(
        "members/duplicates/<int:suggestion_id>/dismiss/",
        hq.suggestion_dismiss,
        name="member-dismiss",
    ),
    path("members/merges/", hq.merge_history, name="member-merges"),
    path("members/merges/<int:merge_id>/undo/", hq.merge_undo, name="member-merge-undo"),
    path("members/<int:member_id>/", hq.member_profile, name="member-profile"),
    path(
        "members/<int:member_id>/points/adjust/",
        loyalty.points_adjust_view,
        name="member-points-adjust",
    ),
    path("members/<int:member_id>/tier/", loyalty.tier_manual_view, name="member-tier-set"),
    path("coupons/<int:coupon_id>/revoke/", loyalty.coupon_revoke_view, name="coupon-revoke"),
    path("loyalty/", loyalty.settings_overview, name="loyalty"),
    path("loyalty/<str:kind>/new/", loyalty.settings_edit, name="loyalty-new"),
    path("loyalty/<str:kind>/<int:pk>/", loyalty.settings_edit, name="loyalty-edit"),
]

mobile_urlpatterns = [
    path("", mobile.home, name="home"),
]

api_urlpatterns = [
    path("auth/wechat-login", api.WechatLoginApi.as_view(), name="auth-wechat-login"),
    path("auth/refresh", api.RefreshApi.as_view(), name="auth-refresh"),
    path("auth/logout", api.LogoutApi.as_view(), name="auth-logout"),
    path("me/", api.MeApi.as_view(), name="me"),
    path("me/phone", api.PhoneBindApi.as_view(), name="me-phone"),
    path("me/sign-in", api.SignInApi.as_view(), name="me-sign-in"),
    path("me/points", api.PointsHistoryApi.as_view(), name="me-points"),
    path("me/coupons", api.CouponListApi.as_view(), name="me-coupons"),
    path(
        "me/redemptions/<int:redemption_id>/cancel",
        api.RedemptionCancelApi.as_view(),
        name="me-redemption-cancel",
    ),
    path("rewards", api.RewardListApi.as_view(), name="rewards"),
    path("rewards/<int:reward_id>/redeem", api.RewardRedeemApi.as_view(), name="reward-redeem"),
]
