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


class SurveyQuestionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    kind = serializers.CharField(help_text="rating (1–5), choice or text")
    choices = serializers.ListField(child=serializers.CharField())
    required = serializers.BooleanField()  # type: ignore[assignment]  # (a field, popped by DRF)


class SurveyInvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    survey = serializers.CharField(source="survey.name")
    kind = serializers.CharField(source="survey.kind")
    question = serializers.CharField(source="survey.question")
    comment_prompt = serializers.CharField(source="survey.comment_prompt")
    order = serializers.CharField(source="order.external_id", default=None)
    sent_at = serializers.DateTimeField()
    questions = SurveyQuestionOutput(source="survey.questions.all", many=True)


class SurveyAnswerInput(serializers.Serializer):
    score = serializers.IntegerField(help_text="1–5 for satisfaction, 0–10 for NPS.")
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    categories = serializers.ListField(
        child=serializers.IntegerField(), required=False, max_length=10
    )
    answers = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=50,
        help_text='The further questions: [{"question": id, "value": …}].',
    )


class SurveyAnswerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    negative = serializers.BooleanField()
    ticket = serializers.IntegerField(allow_null=True)
