from members.models.auth import MemberSession, SandboxCodeKind, SandboxWechatCode
from members.models.identity import PER_APP_KINDS, STRONG_KINDS, Identity, IdentityKind
from members.models.lifecycle import LifecycleChange, LifecycleSettings
from members.models.loyalty import (
    BonusPeriod,
    EarnEvent,
    EarnRule,
    EntryKind,
    IdempotentRequest,
    LedgerEntry,
    LotSpend,
    PointsAccount,
    PointsKind,
    PointsLot,
)
from members.models.member import (
    Channel,
    Gender,
    LifecycleStage,
    Member,
    can_see_full_phone,
    mask_phone,
)
from members.models.merge import MemberMerge, MergeSuggestion, SuggestionStatus
from members.models.orders import Order, OrderLine, OrderStatus

__all__ = [
    "BonusPeriod",
    "Channel",
    "EarnEvent",
    "EarnRule",
    "EntryKind",
    "IdempotentRequest",
    "LedgerEntry",
    "LotSpend",
    "PointsAccount",
    "PointsKind",
    "PointsLot",
    "Gender",
    "Identity",
    "IdentityKind",
    "LifecycleChange",
    "LifecycleSettings",
    "LifecycleStage",
    "Member",
    "MemberMerge",
    "MemberSession",
    "MergeSuggestion",
    "Order",
    "OrderLine",
    "OrderStatus",
    "PER_APP_KINDS",
    "STRONG_KINDS",
    "SandboxCodeKind",
    "SandboxWechatCode",
    "SuggestionStatus",
    "can_see_full_phone",
    "mask_phone",
]
