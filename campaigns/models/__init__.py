from campaigns.models.broadcasts import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryStatus,
    GuideSendTask,
    SuppressionReason,
)
from campaigns.models.messaging import (
    GUIDE_POSTED,
    FrequencyRule,
    GatewayKind,
    GatewayThrottle,
    InboxMessage,
    MarketingOptOut,
    Material,
    MaterialKind,
    SandboxCall,
    SandboxFault,
)

__all__ = [
    "GUIDE_POSTED",
    "Broadcast",
    "BroadcastStatus",
    "Delivery",
    "DeliveryStatus",
    "FrequencyRule",
    "GatewayKind",
    "GatewayThrottle",
    "GuideSendTask",
    "InboxMessage",
    "MarketingOptOut",
    "Material",
    "MaterialKind",
    "SandboxCall",
    "SandboxFault",
    "SuppressionReason",
]

from campaigns.models.referrals import (  # noqa: E402
    MAX_REFERRAL_LEVELS,
    InviteCode,
    Referral,
    ReferralProgramme,
    ReferralRejection,
    ReferralStatus,
)

__all__ += [
    "MAX_REFERRAL_LEVELS",
    "InviteCode",
    "Referral",
    "ReferralProgramme",
    "ReferralRejection",
    "ReferralStatus",
]

from campaigns.models.journeys import (  # noqa: E402
    BranchCondition,
    Campaign,
    CampaignStatus,
    EnrollmentState,
    ExitReason,
    JourneyEnrollment,
    JourneyStep,
    JourneyVisit,
    StepKind,
    TriggerKind,
)

__all__ += [
    "BranchCondition",
    "Campaign",
    "CampaignStatus",
    "EnrollmentState",
    "ExitReason",
    "JourneyEnrollment",
    "JourneyStep",
    "JourneyVisit",
    "StepKind",
    "TriggerKind",
]

from campaigns.models.attribution import AttributionSetting, Conversion  # noqa: E402

__all__ += ["AttributionSetting", "Conversion"]

from campaigns.models.funnel import ConversionFact, FunnelFact, FunnelState  # noqa: E402

__all__ += ["ConversionFact", "FunnelFact", "FunnelState"]

from campaigns.models.consent import (  # noqa: E402
    CHANNEL_PURPOSES,
    MARKETING_CHANNELS,
    ConsentChannel,
    ConsentEntry,
    ConsentPurpose,
    ConsentSource,
)

__all__ += [
    "CHANNEL_PURPOSES",
    "MARKETING_CHANNELS",
    "ConsentChannel",
    "ConsentEntry",
    "ConsentPurpose",
    "ConsentSource",
]
