"""The process boundary: server (needs torch, imported lazily) and client (needs neither torch nor bpy)."""
