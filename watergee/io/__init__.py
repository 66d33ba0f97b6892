"""Raster and vector I/O: the one place that opens, reads and writes geodata."""
