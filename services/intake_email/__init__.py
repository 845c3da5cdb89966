"""intake_email."""
