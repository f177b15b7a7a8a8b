from touchpoints.management.commands._import_command import ImportCommand


class Command(ImportCommand):
    help = "Import a channel's member export; prints one JSON summary line."
    kind = "members"
