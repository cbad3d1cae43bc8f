class DomainError(Exception):
    """A refused use case (e.g. a transition outside the status graph), shown to the user."""

    def __init__(self, message, *, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field
