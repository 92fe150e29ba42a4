from django.core.management.base import BaseCommand, CommandError

from cskpi.choices import Role
from cskpi.models import Department
from cskpi.services import token_issue, user_grants_upsert


class Command(BaseCommand):
    help = "Create or update a user with grants and print a new bearer token (alone on the last line)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="sees and may do everything")
        parser.add_argument("--grant", action="append", default=[], metavar="DEPT:ROLE",
                            help=f"role is one of {', '.join(Role.values)}; repeatable")
        parser.add_argument("--agent", default="", metavar="AGENT_ID", help="the agent id for agent grants")
        parser.add_argument("--name", default="", help="a label for the token")

    def handle(self, *args, username, staff, grant, agent, name, **options):
        grants = []
        for item in grant:
            slug, _, role = item.partition(":")
            if role not in Role.values:
                raise CommandError(f"--grant {item}: role must be one of {', '.join(Role.values)}")
            if not Department.objects.filter(slug=slug).exists():
                raise CommandError(f"--grant {item}: no department '{slug}' (create_department first)")
            grants.append((slug, role))
        try:
            user = user_grants_upsert(username=username, staff=staff, grants=grants, agent=agent)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        token = token_issue(user=user, name=name)
        self.stderr.write(f"token for {user.username} (shown once):")
        self.stdout.write(token)
