"""geomdl.models"""
