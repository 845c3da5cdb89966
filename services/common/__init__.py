"""Process plumbing shared by every service: bus, config, clock, lifecycle, logs. No business rules."""
