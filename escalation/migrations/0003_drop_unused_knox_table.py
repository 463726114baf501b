"""Drop django-rest-knox's own token table. The API tokens are escalation.ApiToken (KNOX_TOKEN_MODEL), but knox's
migrations create knox_authtoken whatever the setting says: an empty table that no code uses, whose foreign key to
the users stops PostgreSQL from truncating the users table (manage.py flush, test databases)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("escalation", "0002_api_tokens"),
        ("knox", "0009_extend_authtoken_field"),
    ]

    operations = [
        migrations.RunSQL("DROP TABLE IF EXISTS knox_authtoken", reverse_sql=migrations.RunSQL.noop),
    ]
