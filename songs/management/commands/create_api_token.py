from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print the REST API token of a user (created when missing), for the header "
        "'Authorization: Token <key>'. The key is the last line of the output."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create the user when missing (no password: it signs in with the token only)",
        )
        parser.add_argument("--staff", action="store_true", help="Make the user staff (imports, training runs)")
        parser.add_argument("--reset", action="store_true", help="Replace the user's token: the old key stops working")

    def handle(self, *args, username, create_user, staff, reset, **options):
        User = get_user_model()
        with transaction.atomic():
            user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                if not create_user:
                    raise CommandError(f"No user named {username!r}; pass --create-user to create one.")
                field = User._meta.get_field(User.USERNAME_FIELD)
                try:
                    field.clean(username, None)
                except ValidationError as exc:
                    raise CommandError(f"{username!r} is not a valid username: {' '.join(exc.messages)}") from None
                user = User.objects.create_user(**{User.USERNAME_FIELD: username}, is_staff=staff)
                self.stderr.write(f"Created user {username!r}{' (staff)' if staff else ''} without a password.")
            elif staff and not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
                self.stderr.write(f"{username!r} is now staff.")
            if not user.is_active:
                raise CommandError(f"User {username!r} is inactive; its token would be refused.")
            if reset:
                deleted, _ = Token.objects.filter(user=user).delete()
                if deleted:
                    self.stderr.write("The previous token no longer works.")
            token, created = Token.objects.get_or_create(user=user)
        if not created:
            self.stderr.write("Existing token (pass --reset for a new one).")
        self.stdout.write(token.key)
