"""`make run`: a small supervisor that starts the whole stack in order and stops it cleanly."""
