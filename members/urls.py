from django.urls import path

from members.api import views as api
from members.views import hq, loyalty, mobile, rfm, segments, tags

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
    path("members/<int:member_id>/tags/add/", tags.member_tag_add_view, name="member-tag-add"),
    path(
        "members/<int:member_id>/tags/<int:tag_id>/remove/",
        tags.member_tag_remove_view,
        name="member-tag-remove",
    ),
    path("tags/", tags.tag_overview, name="tags"),
    path("tags/bulk/", tags.tag_bulk, name="tag-bulk"),
    path("tags/rules/new/", tags.auto_rule_edit, name="auto-rule-new"),
    path("tags/rules/<int:pk>/", tags.auto_rule_detail, name="auto-rule"),
    path("tags/rules/<int:pk>/edit/", tags.auto_rule_edit, name="auto-rule-edit"),
    path("tags/rules/<int:pk>/run/", tags.auto_rule_run, name="auto-rule-run"),
    path("tags/<int:pk>/members/", tags.tag_members, name="tag-members"),
    path("tags/<str:kind>/new/", tags.tag_edit, name="tag-new"),
    path("tags/<str:kind>/<int:pk>/", tags.tag_edit, name="tag-edit"),
    path("rfm/", rfm.rfm_page, name="rfm"),
    path("rfm/settings/", rfm.rfm_settings, name="rfm-settings"),
    path("rfm/recompute/", rfm.rfm_recompute, name="rfm-recompute"),
    path("segments/", segments.segment_list, name="segments"),
    path("segments/new/", segments.segment_edit, name="segment-new"),
    path("segments/count/", segments.segment_count, name="segment-count"),
    path("segments/<int:pk>/", segments.segment_detail, name="segment"),
    path("segments/<int:pk>/edit/", segments.segment_edit, name="segment-edit"),
    path("segments/<int:pk>/freeze/", segments.segment_freeze_view, name="segment-freeze"),
    path("segments/<int:pk>/archive/", segments.segment_archive_view, name="segment-archive"),
    path("segments/<int:pk>/export/", segments.segment_export, name="segment-export"),
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
