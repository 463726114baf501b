"""WSGI entry point (gunicorn callrouting.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "callrouting.settings")
application = get_wsgi_application()
