"""geomdl.pipelines"""
