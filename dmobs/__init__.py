"""dmobs: the DM Agency platform's audit log and observability package."""

# The version on spans (service.version); a build can stamp DMOBS_VERSION instead.
__version__ = "0.1.0"
