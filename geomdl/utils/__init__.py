"""Small utilities shared across geomdl (atomic file writes, optional imports, random rotations, devices)."""
