"""The data layer's one error: what a user supplied (a spec, a file, a limit) cannot be used."""


class DatasetError(ValueError):
    """A dataset spec or file a user supplied cannot be used."""
