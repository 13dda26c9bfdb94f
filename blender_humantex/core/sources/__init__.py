"""The input sources: each module reads one source's files into a partial.PartialTexture.

The table of sources (name -> fields and reader) is core/request.py's SOURCES.
"""
