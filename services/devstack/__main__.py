"""Entry point for `python -m services.devstack` (what `make run` calls)."""

from services.devstack.supervisor import main

raise SystemExit(main())
