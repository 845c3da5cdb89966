"""`python -m services.timeline CLIENT_ID [--json] [--tz ZONE]`: print a client's history in order."""

from services.timeline.cli import main

raise SystemExit(main())
