"""Training of the project's multi-task intrapartum network (needs the ``train`` extra: torch, onnx).

* :mod:`.data`   - datasets (PSFHS, HC18), augmentation, weak frame-class labels, the split;
* :mod:`.model`  - the network and its multi-task loss;
* :mod:`.train`  - the command line (``python -m workstation.training.train``);
* :mod:`.export` - ONNX export, ONNX Runtime check, manifest and model card.
"""
