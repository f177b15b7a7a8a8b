from __future__ import annotations

from rest_framework import serializers


class IdentityInput(serializers.Serializer):
    kind = serializers.CharField(help_text="phone, unionid, openid, wecom_external, …")
    value = serializers.CharField()
    app = serializers.CharField(required=False, help_text="For an openid: its app id.")


class EventInput(serializers.Serializer):
    id = serializers.CharField(max_length=64, help_text="The client's own id: a replay is ignored.")
    type = serializers.CharField(help_text="follow, unfollow, scan, register, browse_product, …")
    time = serializers.DateTimeField(help_text="ISO 8601 with a time zone.")
    identity = IdentityInput(many=True, required=False)
    touchpoint = serializers.CharField(required=False)
    properties = serializers.DictField(required=False, help_text="At most 4 KB; `qr` for scans.")


class EventBatchInput(serializers.Serializer):
    events = EventInput(many=True)


class RejectedOutput(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class EventBatchOutput(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = RejectedOutput(many=True)
