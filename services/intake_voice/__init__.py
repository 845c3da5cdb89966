"""intake_voice."""
