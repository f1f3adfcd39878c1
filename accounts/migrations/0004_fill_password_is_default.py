from django.contrib.auth.hashers import check_password, is_password_usable
from django.db import migrations

from accounts.passwords import PLACEHOLDERS

# The likeliest first: the old built-in default, then the old .env.example value.
LIKELY = ["changeme", "fixme-choose-a-password"]


def fill_password_is_default(apps, schema_editor):
    """Hash each placeholder against each stored password, once, so no command ever has to again.

    Only the lower-case spellings are tried (a hash cannot be normalised); a
    user who set "ChangeMe" is caught the next time the password is set.
    """
    User = apps.get_model("accounts", "User")
    candidates = LIKELY + sorted(PLACEHOLDERS - set(LIKELY))
    for user in User.objects.all().only("pk", "password"):
        if not is_password_usable(user.password):
            continue
        if any(check_password(candidate, user.password) for candidate in candidates):
            User.objects.filter(pk=user.pk).update(password_is_default=True)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_user_password_is_default"),
    ]

    operations = [
        migrations.RunPython(fill_password_is_default, migrations.RunPython.noop),
    ]
