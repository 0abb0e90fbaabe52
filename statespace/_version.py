"""The library's version, in a module of its own so that any module (persistence headers,
the package itself) can import it without importing the whole package."""

__version__ = "0.1.0"
