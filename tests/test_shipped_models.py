"""The models shipped in models/: each file matches its manifest (hash, size under 30 MB), passes the engine's own
check and has its card; the head-biometry model the main manifest names ships beside it. Needs no torch: an
install without the train extra still checks what it ships."""
from __future__ import annotations

import json
from pathlib import Path

from model_fixtures import MANIFEST_REQUIRED_KEYS as REQUIRED_KEYS
from workstation.inference.manifest import file_sha256, read_manifest, verify

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "psfh-multitask.json"


def test_shipped_models_match_their_manifests():
    names = []
    for path in sorted(SHIPPED.parent.glob("*.json")):
        manifest = json.loads(path.read_text())
        assert REQUIRED_KEYS <= set(manifest), path.name
        onnx_path = path.parent / manifest["file"]
        assert file_sha256(onnx_path) == manifest["sha256"]
        assert onnx_path.stat().st_size == manifest["size_bytes"] < 30 * 1024 * 1024
        verify(read_manifest(path))
        assert (path.parent / f"{manifest['name']}.md").exists()
        names.append(manifest["name"])
    assert "psfh-multitask" in names
    # the head-biometry model the main manifest names ships beside it
    companion = json.loads(SHIPPED.read_text())["head_biometry"]
    assert companion["model"] in names
    assert json.loads((SHIPPED.parent / f"{companion['model']}.json").read_text())["role"] == "head_biometry"
