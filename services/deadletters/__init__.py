"""Dead letters: list what the consumers gave up on, and replay it to its original subject."""
