"""geomdl.datasets"""
