"""`make bench`: Frontdesk throughput and latency as ratios against bare baselines in the same run."""
