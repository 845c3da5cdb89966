"""Frontdesk: email and phone intake gateway for service businesses."""
