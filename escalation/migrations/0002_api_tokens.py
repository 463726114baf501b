"""API tokens stored hashed (django-rest-knox), and the plain-text tokens of DRF's authtoken moved into them.

Each authtoken key becomes an ApiToken holding only its digest, named "API token (before named tokens)", so
scripts that use it keep working; then the plain-text rows are deleted. The emptied authtoken table is left in
place (the authtoken app is no longer installed, so its migrations no longer run).
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from knox.crypto import hash_token
from knox.settings import CONSTANTS

MIGRATED_NAME = "API token (before named tokens)"


def hash_plain_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("escalation", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
        for key, user_id, created in rows:
            token = ApiToken(
                digest=hash_token(key), token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id, name=MIGRATED_NAME
            )
            token.save()
            # created is auto_now_add: the original date is kept with an update.
            ApiToken.objects.filter(pk=token.pk).update(created=created)
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):

    dependencies = [
        ('escalation', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('token_key', models.CharField(db_index=True, max_length=25)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('expiry', models.DateTimeField(blank=True, null=True)),
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('digest', models.CharField(max_length=128, unique=True)),
                ('name', models.CharField(help_text='What the token is for, e.g. the script that uses it.', max_length=100)),
                ('last_used', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_token_set', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created', '-id'],
                'verbose_name': 'API token',
            },
        ),
        # Plain-text keys cannot be recovered once deleted: nothing to undo.
        migrations.RunPython(hash_plain_text_tokens, migrations.RunPython.noop),
    ]
