import os

from django.core.wsgi import get_wsgi_application

from backend import edge

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
# Over-long URIs, headers and declared bodies are refused with JSON before Django (backend/edge.py).
application = edge.wrap(get_wsgi_application())
