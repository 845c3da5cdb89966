"""End-to-end acceptance tests: the whole Frontdesk stack in one event loop."""
