"""Students: small, fast, dense-only models (per-node MLP, STID, linear) that export to ONNX."""
