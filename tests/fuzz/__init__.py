"""Coverage-guided fuzzing of the email parser (atheris); `make fuzz` runs it for a bounded time."""
