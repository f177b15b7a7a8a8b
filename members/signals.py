"""Signals later apps listen to, so `members` never imports them (the app order is
scrm ← members ← touchpoints ← campaigns)."""

from django.dispatch import Signal

# Sent once a person becomes a registered member (会员) by binding their phone, after the
# bind has committed. Arguments: member. Receivers must not raise into the registration.
member_registered = Signal()
