from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    """The admin with its site for platform operators only (backend/admin_site.py). Kept apart from
    the site itself, which imports models and so cannot load while INSTALLED_APPS is read."""

    default_site = "backend.admin_site.PlatformAdminSite"
