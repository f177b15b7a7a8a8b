"""The access matrix: every URL name the project serves, and what each role gets there.

`tests/core/test_access_matrix.py` opens every entry as every role and checks the outcome;
it also walks `scrm.urls` and fails when a URL has no entry here (or an entry names a URL
that no longer exists), so a new URL cannot ship without saying who may open it.

Roles (built in the test from `tests.conftest.build_org`):
  anonymous · hq_admin · hq_operator · region_manager (region A) · store_manager (store a1) ·
  guide (guide of store a1) · superuser (staff superuser) · staff_store_manager (store
  manager of a1 with Django-admin access and every `view_*` permission).

Outcomes: "ok" 200 · "login" redirect to a sign-in page · "forbidden" 403 ·
"not_found" 404 · "unauthorized" 401 (the mini-program's member token is missing).
A POST-only URL (`method="POST"`) is never posted as a role that may use it (that would act);
for such a role "ok" means a GET is answered 405, and an object of another store is posted
to and must be 404 with nothing written. A role that may not use it posts and must be
refused with nothing written.

Objects: `args` maps each URL argument to an object of the test's organisation
("member", "broadcast", …). The object is of the role's own store (for the guide: their own
customer, task, send task); when `scoped` is true the same URL is opened for the matching
object of store b1 in the other region, which every role scoped to stores must get as 404.
"any" stands for an id the URL never looks up: the mini-program's API refuses every staff
session before it reads its object.
`export` marks pages that download their table with `?format=csv` (scrm/core/exports.py).

Grouped by rule rather than listed (see `RULE_GROUPED` in the test):
  - the Django admin's own views: index, login, logout, password change, jsi18n,
    autocomplete, app index, view-on-site, and every model's add / change / delete /
    history pages, plus its unnamed redirects and catch-all. Each registered model's
    changelist *is* listed (`ADMIN_CHANGELISTS`, generated from the admin site).
  - static and media files are served outside the URL map (WhiteNoise / the web server).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ROLES = (
    "anonymous",
    "hq_admin",
    "hq_operator",
    "region_manager",
    "store_manager",
    "guide",
    "superuser",
    "staff_store_manager",
)
# Roles that see only some stores: another store's object is 404 to them, never shown.
STORE_SCOPED_ROLES = frozenset({"region_manager", "store_manager", "guide", "staff_store_manager"})


def _outcomes(**outcomes: str) -> Mapping[str, str]:
    assert set(outcomes) == set(ROLES), set(ROLES) ^ set(outcomes)
    return outcomes


# /hq/ pages behind `hq_required`: head office and managers; guides belong on /m/.
HQ = _outcomes(
    anonymous="login",
    hq_admin="ok",
    hq_operator="ok",
    region_manager="ok",
    store_manager="ok",
    guide="forbidden",
    superuser="ok",
    staff_store_manager="ok",
)
# /hq/ pages behind `head_office_required`: merging people, imports, loyalty settings, tags.
HEAD_OFFICE = _outcomes(
    anonymous="login",
    hq_admin="ok",
    hq_operator="ok",
    region_manager="forbidden",
    store_manager="forbidden",
    guide="forbidden",
    superuser="ok",
    staff_store_manager="forbidden",
)
# The audit trail: head office holding `audit.view_auditevent`, which the HQ admin role
# carries; an operator is refused unless granted it, managers even with it.
AUDIT_VIEWER = _outcomes(
    anonymous="login",
    hq_admin="ok",
    hq_operator="forbidden",
    region_manager="forbidden",
    store_manager="forbidden",
    guide="forbidden",
    superuser="ok",
    staff_store_manager="forbidden",
)
# /m/ pages behind `mobile_required`: guides and store managers.
MOBILE = _outcomes(
    anonymous="login",
    hq_admin="forbidden",
    hq_operator="forbidden",
    region_manager="forbidden",
    store_manager="ok",
    guide="ok",
    superuser="forbidden",
    staff_store_manager="ok",
)
# "Show full number": the view_full_phone permission on top of the page's own access. Of the
# test's roles only the superuser and the staff store manager (every view_* permission) hold it.
WITHOUT_FULL_PHONE = ("hq_admin", "hq_operator", "region_manager", "store_manager", "guide")
HQ_UNMASK = _outcomes(**{**HQ, **dict.fromkeys(WITHOUT_FULL_PHONE, "forbidden")})
MOBILE_UNMASK = _outcomes(**{**MOBILE, "store_manager": "forbidden", "guide": "forbidden"})
# An uploaded list's report: head office, or whoever uploaded it (it lists the file's values).
# The own store's list in the test was uploaded by the store manager of a1.
UPLOADER = _outcomes(**{**HQ, "region_manager": "not_found", "staff_store_manager": "not_found"})
# The language switch answers a GET by sending the visitor back where they came from.
LANGUAGE_SWITCH = _outcomes(**dict.fromkeys(ROLES, "redirect"))
# A member's tracked link: public, and an unknown link is not found for anyone.
UNKNOWN_LINK = _outcomes(**dict.fromkeys(ROLES, "not_found"))
# A guide's send task is theirs alone: a store manager opening their guide's is not found.
SEND_TASK = _outcomes(
    **{**MOBILE, "store_manager": "not_found", "staff_store_manager": "not_found"}
)
# A provider's signed callback: the signature is the proof, so a session is none; without
# it every role (and nobody) is refused and nothing is written.
SIGNED_HOOK = _outcomes(**dict.fromkeys(ROLES, "forbidden"))
# Pages anyone reaches: sign-in, language switch, health, the API's description.
PUBLIC = _outcomes(**dict.fromkeys(ROLES, "ok"))
# Sign-in pages send someone already signed in on to their workspace.
SIGN_IN = _outcomes(
    anonymous="ok",
    hq_admin="redirect",
    hq_operator="redirect",
    region_manager="redirect",
    store_manager="redirect",
    guide="redirect",
    superuser="redirect",
    staff_store_manager="redirect",
)
# The mini-program's API: only a member's token opens it; a staff session is not one.
MEMBER_API = _outcomes(**dict.fromkeys(ROLES, "unauthorized"))
# Staff API (session): any signed-in staff member, scoped by `for_user`.
STAFF_API = _outcomes(anonymous="forbidden", **dict.fromkeys(ROLES[1:], "ok"))
# Django admin changelists: staff with the model's view permission.
ADMIN = _outcomes(
    anonymous="login",
    hq_admin="forbidden",  # staff, but no admin permissions granted
    hq_operator="login",
    region_manager="login",
    store_manager="login",
    guide="login",
    superuser="ok",
    staff_store_manager="ok",
)
# The audit trail in the admin: the HQ admin role carries its view permission.
ADMIN_AUDIT = _outcomes(**{**ADMIN, "hq_admin": "ok"})
# The admin's import (django-import-export): needs the add permission, not just view.
ADMIN_IMPORT = _outcomes(**{**ADMIN, "hq_admin": "forbidden", "staff_store_manager": "forbidden"})


@dataclass(frozen=True)
class Entry:
    access: Mapping[str, str]
    method: str = "GET"
    args: Mapping[str, str] = field(default_factory=dict)
    scoped: bool = False
    export: bool = False
    # Which of a page's tables `?format=csv` downloads ("" for its main table).
    table: str = ""
    # Query parameters the page needs, each naming an object (e.g. which member to keep).
    query: Mapping[str, str] = field(default_factory=dict)
    # Extra URL arguments that are not objects (an action, a kind, a file format).
    fixed: Mapping[str, str] = field(default_factory=dict)


def page(access: Mapping[str, str], **options: object) -> Entry:
    return Entry(access=access, **options)  # type: ignore[arg-type]


def post(access: Mapping[str, str], **options: object) -> Entry:
    return Entry(access=access, method="POST", **options)  # type: ignore[arg-type]


MEMBER = {"member_id": "member"}

MATRIX: dict[str, Entry] = {
    # --- sign-in and site-wide ------------------------------------------------------------
    "root": page(SIGN_IN),
    "login": page(SIGN_IN),
    "hq_login": page(SIGN_IN),
    "mobile_login": page(SIGN_IN),
    "logout": post(PUBLIC),
    "set_language": page(LANGUAGE_SWITCH),
    "javascript-catalog": page(PUBLIC),
    "healthz": page(PUBLIC),
    "api-schema": page(PUBLIC),
    "api-docs": page(PUBLIC),
    "qr-landing": page(PUBLIC, args={"token": "qr_token"}),
    "tracked-link": page(UNKNOWN_LINK, args={"token": "link_token"}),
    "unsubscribe": page(UNKNOWN_LINK, args={"token": "link_token"}),
    "sms-inbound": post(SIGNED_HOOK),
    # --- /hq/ core, org -------------------------------------------------------------------
    "hq:home": page(HQ),
    "hq:system": page(HQ),
    "hq:worker-ping": post(HQ),
    "hq:notifications-read": post(HQ),
    "hq:stores": page(HQ, export=True),
    "hq:staff": page(HQ, export=True),
    "hq:audit": page(AUDIT_VIEWER, export=True),
    # --- /hq/ members ---------------------------------------------------------------------
    "hq:members": page(HQ, export=True),
    "hq:member-export": page(HQ),
    "hq:member-duplicates": page(HEAD_OFFICE),
    "hq:member-merge": page(
        HEAD_OFFICE, args={"suggestion_id": "suggestion"}, query={"keep": "member"}
    ),
    "hq:member-dismiss": post(HEAD_OFFICE, args={"suggestion_id": "suggestion"}),
    "hq:member-merges": page(HEAD_OFFICE, export=True),
    "hq:member-merge-undo": page(HEAD_OFFICE, args={"merge_id": "merge"}),
    "hq:member-profile": page(HQ, args=MEMBER, scoped=True),
    "hq:member-privacy": page(HEAD_OFFICE, args=MEMBER),
    "hq:member-privacy-export": post(HEAD_OFFICE, args=MEMBER),
    "hq:member-privacy-erase": page(HEAD_OFFICE, args=MEMBER),
    "hq:member-phone-reveal": post(HQ_UNMASK, args=MEMBER, scoped=True),
    "hq:member-points-adjust": page(HEAD_OFFICE, args=MEMBER),
    "hq:member-tier-set": page(HEAD_OFFICE, args=MEMBER),
    "hq:coupon-revoke": page(HEAD_OFFICE, args={"coupon_id": "coupon"}),
    "hq:member-tag-add": post(HQ, args=MEMBER, scoped=True),
    "hq:member-consent-record": page(HQ, args=MEMBER, scoped=True),
    "hq:member-tag-remove": post(HQ, args={**MEMBER, "tag_id": "tag"}, scoped=True),
    "hq:member-reassign": post(HQ, args=MEMBER, scoped=True),
    "hq:guides": page(HQ, export=True),
    "hq:guide": page(HQ, args={"guide_id": "guide"}, scoped=True, export=True),
    "hq:guide-transfer": post(HQ, args={"guide_id": "guide"}, scoped=True),
    "hq:guide-departure": page(HQ, args={"guide_id": "guide"}, scoped=True),
    "hq:store-pool-distribute": post(HQ, args={"store_id": "store"}, scoped=True),
    "hq:tasks": page(HQ, export=True),
    "hq:task-new": page(HEAD_OFFICE),
    "hq:tags": page(HEAD_OFFICE, export=True, table="rules"),
    "hq:tag-bulk": page(HEAD_OFFICE),
    "hq:auto-rule-new": page(HEAD_OFFICE),
    "hq:auto-rule": page(HEAD_OFFICE, args={"pk": "auto_rule"}),
    "hq:auto-rule-edit": page(HEAD_OFFICE, args={"pk": "auto_rule"}),
    "hq:auto-rule-run": post(HEAD_OFFICE, args={"pk": "auto_rule"}),
    "hq:tag-members": page(HEAD_OFFICE, args={"pk": "tag"}, export=True),
    "hq:tag-new": page(HEAD_OFFICE, fixed={"kind": "tag"}),
    "hq:tag-edit": page(HEAD_OFFICE, args={"pk": "tag"}, fixed={"kind": "tag"}),
    "hq:rfm": page(HQ, export=True),
    "hq:rfm-settings": post(HQ),
    "hq:rfm-recompute": post(HQ),
    "hq:segments": page(HQ, export=True),
    "hq:segment-new": page(HQ),
    "hq:segment-count": post(HQ),
    "hq:segment": page(HQ, args={"pk": "segment"}, scoped=True),
    "hq:segment-edit": page(HQ, args={"pk": "segment"}, scoped=True),
    "hq:segment-freeze": post(HQ, args={"pk": "segment"}, scoped=True),
    "hq:segment-archive": post(HQ, args={"pk": "segment"}, scoped=True),
    "hq:segment-export": page(HQ, args={"pk": "segment"}, scoped=True),
    "hq:segment-upload": page(HQ),
    "hq:segment-upload-result": page(UPLOADER, args={"pk": "uploaded_segment"}, scoped=True),
    "hq:segment-upload-rejected": page(UPLOADER, args={"pk": "uploaded_segment"}, scoped=True),
    "hq:loyalty": page(HEAD_OFFICE, export=True),
    "hq:loyalty-new": page(HEAD_OFFICE, fixed={"kind": "tier"}),
    "hq:loyalty-edit": page(HEAD_OFFICE, args={"pk": "tier"}, fixed={"kind": "tier"}),
    # --- /hq/ touchpoints, feedback, imports ----------------------------------------------
    "hq:touchpoints": page(HQ, export=True),
    "hq:touchpoint-new": page(HQ),
    "hq:touchpoint-health": page(HQ, export=True),
    "hq:feedback": page(HQ, export=True),
    "hq:tickets": page(HQ, export=True),
    "hq:ticket": page(HQ, args={"pk": "ticket"}, scoped=True),
    "hq:touchpoint-alert-ack": post(HQ, args={"pk": "alert"}, scoped=True),
    "hq:touchpoint": page(HQ, args={"pk": "touchpoint"}, scoped=True, export=True),
    "hq:touchpoint-edit": page(HQ, args={"pk": "touchpoint"}, scoped=True),
    "hq:qr-edit": page(HQ, args={"pk": "touchpoint"}, scoped=True),
    "hq:qr-image": page(HQ, args={"pk": "touchpoint"}, scoped=True, fixed={"file_format": "svg"}),
    "hq:channel-new": page(HEAD_OFFICE),
    "hq:channel-edit": page(HEAD_OFFICE, args={"pk": "channel"}),
    "hq:event-clients": page(HEAD_OFFICE, export=True),
    "hq:event-client-off": post(HEAD_OFFICE, args={"pk": "event_client"}),
    "hq:imports": page(HEAD_OFFICE, export=True),
    "hq:import-detail": page(HEAD_OFFICE, args={"job_id": "import_job"}),
    "hq:import-cancel": post(HEAD_OFFICE, args={"job_id": "import_job"}),
    "hq:import-errors": page(
        HEAD_OFFICE, args={"job_id": "import_job"}, fixed={"file_format": "csv"}
    ),
    "hq:import-template": page(HQ, fixed={"kind": "members"}),
    "hq:import-mappings": page(HEAD_OFFICE, export=True),
    "hq:import-mapping-edit": page(HEAD_OFFICE, args={"mapping_id": "mapping"}),
    # --- /hq/ campaigns -------------------------------------------------------------------
    "hq:broadcasts": page(HQ, export=True),
    "hq:broadcast-new": page(HQ),
    "hq:broadcast": page(
        HQ, args={"pk": "broadcast"}, scoped=True, export=True, table="guide-tasks"
    ),
    "hq:broadcast-funnel": page(HQ, args={"pk": "broadcast"}, scoped=True, export=True),
    "hq:broadcast-action": post(
        HQ, args={"pk": "broadcast"}, scoped=True, fixed={"action": "approve"}
    ),
    "hq:materials": page(HQ, export=True),
    "hq:material-new": page(HQ),
    "hq:material-preview": post(HQ),
    "hq:material": page(HQ, args={"pk": "material"}, scoped=True),
    "hq:material-edit": page(HQ, args={"pk": "material"}, scoped=True),
    "hq:material-delete": page(HQ, args={"pk": "material"}, scoped=True),
    "hq:campaigns": page(HQ, export=True),
    "hq:campaign-new": page(HQ),
    "hq:campaign-compare": page(HQ, export=True),
    "hq:campaign": page(HQ, args={"pk": "campaign"}, scoped=True, export=True),
    "hq:campaign-edit": page(HQ, args={"pk": "campaign"}, scoped=True),
    "hq:campaign-steps": post(HQ, args={"pk": "campaign"}, scoped=True),
    "hq:campaign-funnel": page(HQ, args={"pk": "campaign"}, scoped=True, export=True),
    "hq:campaign-action": post(HQ, args={"pk": "campaign"}, scoped=True, fixed={"action": "pause"}),
    # --- /hq/monitor/ ---------------------------------------------------------------------
    "hq:monitor": page(HQ),
    "hq:monitor-pool": page(HQ, export=True),
    "hq:monitor-lifecycle": page(HQ, export=True),
    "hq:monitor-tiers": page(HQ, export=True),
    "hq:monitor-points": page(HQ, export=True),
    "hq:monitor-rfm": page(HQ, export=True),
    "hq:monitor-sales": page(HQ, export=True),
    "hq:monitor-cohorts": page(HQ, export=True),
    # --- /m/ --------------------------------------------------------------------------------
    "mobile:home": page(MOBILE),
    "mobile:customer": page(MOBILE, args=MEMBER, scoped=True),
    "mobile:customer-phone-reveal": post(MOBILE_UNMASK, args=MEMBER, scoped=True),
    "mobile:customer-tag-add": post(MOBILE, args=MEMBER, scoped=True),
    "mobile:customer-tag-remove": post(MOBILE, args={**MEMBER, "tag_id": "tag"}, scoped=True),
    "mobile:customer-note-add": post(MOBILE, args=MEMBER, scoped=True),
    "mobile:customer-replies": page(MOBILE, args=MEMBER, scoped=True),
    "mobile:customer-consents": page(MOBILE, args=MEMBER, scoped=True),
    "mobile:customer-consent-record": post(MOBILE, args=MEMBER, scoped=True),
    "mobile:tasks": page(MOBILE),
    "mobile:task": page(MOBILE, args={"task_id": "followup"}, scoped=True),
    "mobile:performance": page(MOBILE),
    "mobile:send-tasks": page(MOBILE),
    "mobile:send-task": page(SEND_TASK, args={"task_id": "send_task"}, scoped=True),
    "mobile:send-task-confirm": post(MOBILE, args={"task_id": "send_task"}, scoped=True),
    # --- /api/v1/ ---------------------------------------------------------------------------
    "api:root": page(STAFF_API),
    "api:store-list": page(STAFF_API),
    "api:staff-me": page(STAFF_API),
    "api:auth-wechat-login": post(PUBLIC),
    "api:auth-refresh": post(PUBLIC),
    "api:auth-logout": post(MEMBER_API),
    "api:me": page(MEMBER_API),
    "api:me-phone": post(MEMBER_API),
    "api:me-sign-in": post(MEMBER_API),
    "api:me-points": page(MEMBER_API),
    "api:me-coupons": page(MEMBER_API),
    "api:me-redemption-cancel": post(MEMBER_API, args={"redemption_id": "any"}),
    "api:rewards": page(MEMBER_API),
    "api:reward-redeem": post(MEMBER_API, args={"reward_id": "any"}),
    "api:events": post(MEMBER_API),
    "api:me-surveys": page(MEMBER_API),
    "api:me-survey-answer": post(MEMBER_API, args={"invitation_id": "any"}),
    "api:me-messages": page(MEMBER_API),
    "api:me-message-read": post(MEMBER_API, args={"message_id": "any"}),
    "api:me-referral": page(MEMBER_API),
    "api:me-referral-claim": post(MEMBER_API),
    "api:me-consents": page(MEMBER_API),
    # --- Django admin ---------------------------------------------------------------------
    "admin:members_member_import": page(ADMIN_IMPORT),
    "admin:members_member_process_import": post(ADMIN_IMPORT),
}
# Every registered model's changelist; the test checks this list against the admin site.
ADMIN_CHANGELISTS = [
    "auth_group",
    "axes_accessattempt",
    "axes_accesslog",
    "axes_accessfailurelog",
    "audit_auditevent",
    "core_auditevent",
    "core_workerping",
    "core_workerheartbeat",
    "org_region",
    "org_store",
    "org_staff",
    "members_identity",
    "members_order",
    "members_mergesuggestion",
    "members_membermerge",
    "members_lifecyclechange",
    "members_lifecyclesettings",
    "members_membersession",
    "members_sandboxwechatcode",
    "members_tier",
    "members_earnrule",
    "members_bonusperiod",
    "members_pointsaccount",
    "members_ledgerentry",
    "members_tierchange",
    "members_coupontemplate",
    "members_coupon",
    "members_reward",
    "members_redemption",
    "members_taggroup",
    "members_tag",
    "members_membertag",
    "members_segment",
    "members_rfmsettings",
    "members_repurchasecycle",
    "members_guideassignment",
    "members_followuptask",
    "members_servicenote",
    "members_member",
    "touchpoints_importjob",
    "touchpoints_importrowerror",
    "touchpoints_importmapping",
    "touchpoints_survey",
    "touchpoints_feedbackcategory",
    "touchpoints_channel",
    "touchpoints_touchpoint",
    "touchpoints_eventclient",
    "touchpoints_ticket",
    "campaigns_referralprogramme",
    "campaigns_referral",
    "campaigns_invitecode",
    "campaigns_frequencyrule",
    "campaigns_gatewaythrottle",
    "campaigns_marketingoptout",
    "campaigns_consententry",
    "campaigns_sandboxcall",
    "campaigns_attributionsetting",
    "campaigns_conversion",
]
MATRIX.update({f"admin:{model}_changelist": page(ADMIN) for model in ADMIN_CHANGELISTS})
MATRIX["admin:audit_auditevent_changelist"] = page(ADMIN_AUDIT)
