from campaigns.models.broadcasts import (
    Broadcast,
    BroadcastStatus,
    Delivery,
    DeliveryStatus,
    SuppressionReason,
)
from campaigns.models.messaging import (
    FrequencyRule,
    GatewayKind,
    InboxMessage,
    MarketingOptOut,
    Material,
    MaterialKind,
    SandboxCall,
    SandboxFault,
)

__all__ = [
    "Broadcast",
    "BroadcastStatus",
    "Delivery",
    "DeliveryStatus",
    "FrequencyRule",
    "GatewayKind",
    "InboxMessage",
    "MarketingOptOut",
    "Material",
    "MaterialKind",
    "SandboxCall",
    "SandboxFault",
    "SuppressionReason",
]
