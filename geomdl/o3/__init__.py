"""geomdl.o3"""
