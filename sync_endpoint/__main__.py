"""`python -m sync_endpoint` is the same as the `sync-endpoint` console script."""

from sync_endpoint.cli import main

raise SystemExit(main())
