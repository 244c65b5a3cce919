"""The importer's error type, shared by its modules."""


class IngestError(Exception):
    """The import cannot run as asked: a bad source layout or output folder, or --strict and a bad file."""
