"""signpipe: a cached, rerunnable pipeline for isolated sign language recognition."""

__version__ = "0.1.0"
