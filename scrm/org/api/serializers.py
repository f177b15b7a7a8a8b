from rest_framework import serializers

from scrm.org.models import Staff, Store


class StoreOutput(serializers.ModelSerializer[Store]):
    region = serializers.CharField(source="region.name")

    class Meta:
        model = Store
        fields = ["id", "code", "name", "city", "region", "is_active"]


class MeOutput(serializers.ModelSerializer[Staff]):
    stores = StoreOutput(many=True)
    role_label = serializers.CharField(source="get_role_display")

    class Meta:
        model = Staff
        fields = ["id", "username", "display_name", "role", "role_label", "stores"]
