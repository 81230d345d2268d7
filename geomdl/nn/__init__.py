"""geomdl.nn"""
