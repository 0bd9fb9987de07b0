"""Nothing from outreach is in the Django admin.

Meetings, 見守り, concerns, cases, their contacts and plans are people data (要配慮個人情報): they are
read through outreach/access.py (with audited detail) and written only by outreach/services.py,
through the API. The admin is the platform operator's tool and has neither (backend/admin_site.py).
"""
