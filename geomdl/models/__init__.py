"""geomdl.models: complete networks, registered by name for the training engine.

``MODELS`` maps a name (``model.name`` in a config) to a constructor or to a lazy ``"module:attr"``
string (preferred: importing this package stays cheap). Constructors take the model's
hyper-parameters as keyword arguments (``model.kwargs``) and the model is called as ``model(batch)``
on a ``torch_geometric`` batch. Add one line per model.
"""

MODELS: dict = {
    "tiny_pointnet": "geomdl.models.tiny_pointnet:TinyPointNet",
    "egnn": "geomdl.models.egnn:EGNN",
    "painn": "geomdl.models.painn:PaiNN",
    "pointnet": "geomdl.models.pointnet:PointNet",
    "pointnet2": "geomdl.models.pointnet2:PointNet2",
    "dgcnn": "geomdl.models.dgcnn:DGCNN",
    "ponita": "geomdl.models.ponita:PonitaGraph",
    "ponita_energy": "geomdl.models.ponita:PonitaEnergy",
    "nequip": "geomdl.models.nequip:NequIP",
    "apen": "geomdl.nn.apen.model:APEN",
    "apen_global": "geomdl.nn.apen.model:GlobalFrameAveragedNet",
}
