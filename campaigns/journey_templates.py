"""The campaign templates (活动模板): each a goal, a default trigger and default steps.

A template only prefills the new-campaign form: everything stays editable. Its message
texts become text materials in the library when the campaign is saved (variables:
{name}, {tier}, {points}, {guide})."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from campaigns.models import BranchCondition, GatewayKind, StepKind, TriggerKind


@dataclass(frozen=True)
class StepDraft:
    """A default step. Positions are the list order (1…n); `yes`/`no` name positions
    (None: the journey ends there)."""

    kind: str
    channel: str = ""
    title: str = ""
    body: str = ""
    wait_hours: int | None = None
    condition: str = ""
    yes: int | None = None
    no: int | None = None


@dataclass(frozen=True)
class JourneyTemplate:
    key: str
    name: Promise
    goal: Promise
    trigger: str
    trigger_params: dict[str, Any] = field(default_factory=dict)
    steps: tuple[StepDraft, ...] = ()
    exit_on_conversion: bool = False


DAY = 24


def _send(channel: str, title: str, body: str) -> StepDraft:
    return StepDraft(kind=StepKind.SEND, channel=channel, title=title, body=body)


def _wait(hours: int) -> StepDraft:
    return StepDraft(kind=StepKind.WAIT, wait_hours=hours)


def _branch(condition: str, yes: int | None, no: int | None) -> StepDraft:
    return StepDraft(kind=StepKind.BRANCH, condition=condition, yes=yes, no=no)


INBOX, SMS = GatewayKind.INBOX, GatewayKind.SMS
CONVERTED, OPENED = BranchCondition.CONVERTED, BranchCondition.OPENED

TEMPLATES: dict[str, JourneyTemplate] = {
    t.key: t
    for t in (
        JourneyTemplate(
            key="welcome",
            name=_("New-member welcome (新会员欢迎)"),
            goal=_("Turn a new member into a first purchase within a week."),
            trigger=TriggerKind.REGISTERED,
            steps=(
                _send(
                    INBOX,
                    "欢迎加入",
                    "{name}，欢迎加入会员！您已有 {points} 积分，新人礼券已到账。",
                ),
                _wait(3 * DAY),
                _branch(CONVERTED, None, 4),
                _send(
                    SMS, "新人礼券提醒", "{name}，您的新人礼券即将过期，快来门店或小程序使用吧。"
                ),
            ),
        ),
        JourneyTemplate(
            key="birthday",
            name=_("Birthday (生日关怀)"),
            goal=_("Wish members a happy birthday and bring them in for their gift."),
            trigger=TriggerKind.BIRTHDAY,
            trigger_params={"days_before": 3},
            steps=(
                _send(INBOX, "生日快乐", "{name}，生日快乐！{tier} 会员生日礼已为您备好。"),
                _wait(2 * DAY),
                _branch(OPENED, None, 4),
                _send(SMS, "生日礼提醒", "{name}，您的生日礼还在等您，记得来领取。"),
            ),
        ),
        JourneyTemplate(
            key="win_back",
            name=_("Win back the sleeping (沉睡唤醒)"),
            goal=_("Bring back members who have not bought for a long time."),
            trigger=TriggerKind.NO_PURCHASE_DAYS,
            trigger_params={"days": 90},
            exit_on_conversion=True,
            steps=(
                _send(SMS, "好久不见", "{name}，好久不见！回店即享专属回归礼。"),
                _wait(7 * DAY),
                _send(INBOX, "回归礼", "{name}，您的回归礼还有 3 天到期，{points} 积分也可抵现。"),
            ),
        ),
        JourneyTemplate(
            key="repurchase",
            name=_("Repurchase reminder (复购提醒)"),
            goal=_("Remind first-time buyers to come back when they run out."),
            trigger=TriggerKind.FIRST_PURCHASE,
            exit_on_conversion=True,
            steps=(
                _wait(30 * DAY),
                _send(
                    INBOX, "该补货啦", "{name}，上次购买的商品快用完了吧？{guide} 为您留了新品。"
                ),
                _wait(7 * DAY),
                _send(SMS, "复购提醒", "{name}，复购专享优惠本周有效。"),
            ),
        ),
        JourneyTemplate(
            key="double_points",
            name=_("Double-points days (积分翻倍日)"),
            goal=_("Lift purchases during the double-points days."),
            trigger=TriggerKind.AUDIENCE,
            steps=(
                _send(
                    INBOX, "积分翻倍", "{name}，积分翻倍日开始啦！现有 {points} 积分，消费再翻倍。"
                ),
                _wait(2 * DAY),
                _branch(CONVERTED, None, 4),
                _send(SMS, "积分翻倍最后一天", "{name}，积分翻倍今天结束，别错过。"),
            ),
        ),
        JourneyTemplate(
            key="member_day",
            name=_("Member day (会员日)"),
            goal=_("Bring members to the monthly member day."),
            trigger=TriggerKind.AUDIENCE,
            steps=(
                _send(INBOX, "会员日", "{name}，本月会员日专享福利已上线，{tier} 会员更有惊喜。"),
                _wait(1 * DAY),
                _branch(OPENED, None, 4),
                _send(SMS, "会员日", "{name}，会员日福利今天截止。"),
            ),
        ),
        JourneyTemplate(
            key="referral",
            name=_("Referral (老带新裂变)"),
            goal=_("Ask happy buyers to invite friends."),
            trigger=TriggerKind.FIRST_PURCHASE,
            steps=(
                _wait(2 * DAY),
                _send(INBOX, "邀请好友", "{name}，邀请好友注册，双方各得积分奖励。"),
            ),
        ),
        JourneyTemplate(
            key="coupon_drop",
            name=_("Coupon drop (优惠券发放)"),
            goal=_("Tell the audience about a coupon and get it used."),
            trigger=TriggerKind.AUDIENCE,
            steps=(
                _send(INBOX, "优惠券到账", "{name}，一张优惠券已放入您的账户。"),
                _wait(3 * DAY),
                _branch(CONVERTED, None, 4),
                _send(SMS, "优惠券即将过期", "{name}，您的优惠券即将过期。"),
            ),
        ),
    )
}
