"""The one error of the read side's input: a query parameter the screen cannot use."""

from django.core.exceptions import BadRequest


class InvalidParams(BadRequest):
    """A query parameter has a value the screen cannot use (rendered as a 400 page)."""
