"""watergee: surface water mapping from Sentinel-2 and Landsat."""

__version__ = "0.1.0"
