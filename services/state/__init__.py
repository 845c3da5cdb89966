"""Where KV state lives: tickets, durable timers and hot counters, each behind one typed API."""
