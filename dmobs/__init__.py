"""dmobs: the DM Agency platform's audit log and observability package."""
