from touchpoints.management.commands._import_command import ImportCommand


class Command(ImportCommand):
    help = "Import a channel's order export; prints one JSON summary line."
    kind = "orders"
