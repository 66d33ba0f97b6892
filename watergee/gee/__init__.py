"""The Earth Engine wing: tile grid, composites and QA water labels, downloads, and the export
of a trained pixel CNN as one Earth Engine image expression.

Only `watergee gee ...` imports this package; the rest of watergee never needs earthengine-api
at run time.
"""
