"""The desk console: live queue, SLA clocks, on-call, client history and the service report."""
