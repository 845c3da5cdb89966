"""The client timeline: every touch recorded per client, read back in order."""
