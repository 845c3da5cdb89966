"""`python -m services.deadletters list|replay`: what consumers gave up on, and sending it back (ops)."""

from services.deadletters.cli import main

raise SystemExit(main())
