"""The audit trail: who changed or looked at what (PIPL; issue 11).

Database triggers record every insert, update and delete on the audited tables — bulk
updates included, since they never pass through model `save()`. The application records
what no trigger can see: a full phone number shown, a member's data exported or erased.
Both land in one table, `audit.AuditEvent`, read by the HQ viewer.
"""
