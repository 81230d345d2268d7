"""geomdl.graph"""
