"""Words people read: message templates per kind and channel, their renderer and the time formatter."""
