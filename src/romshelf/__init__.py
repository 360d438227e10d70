"""romshelf: a self-hosted game library server (RomM- and pkmnapi-compatible)."""

__version__ = "0.1.0"
