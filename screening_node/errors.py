"""Domain exceptions with messages a PACS administrator understands."""


class ScreeningNodeError(Exception):
    """Base class for every error the node raises on purpose."""


class ConfigError(ScreeningNodeError):
    """An invalid configuration value; the message names the key and what is allowed."""


class NotAssessable(ScreeningNodeError):
    """The input cannot be analysed; ``reason`` says why in plain words.

    This is an outcome, not a crash: a study that ends here is recorded as
    ``not assessable (reason)`` and the node carries on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"not assessable: {reason}")
        self.reason = reason
