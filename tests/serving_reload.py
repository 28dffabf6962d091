"""Run exported signatures with TensorFlow alone, as TF Serving would (helper for tests/test_export.py).

    python tests/serving_reload.py MANIFEST.json OUT_FOLDER

MANIFEST: {"models": [{"key": "k", "path": "<SavedModel folder>",
                       "calls": [{"id": "c", "signature": "log_prob", "inputs": {"x": "<file.npy>"}}]}]}
Writes OUT_FOLDER/<key>.npz with arrays "<call id>/<output key>" and OUT_FOLDER/report.json with each model's
signature names and the modules that were importable. The packages a deployment may lack are blocked BEFORE
TensorFlow is imported (a None entry in sys.modules makes `import` raise ImportError), so any dependency of the
export on them fails loudly here.
"""

import json
import os
import sys

BLOCKED = ("tensorflow_probability", "keras", "tf_keras", "keras_models", "tfp_flows")
for _name in BLOCKED:
    sys.modules[_name] = None

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(manifest_path, out_folder):
    with open(manifest_path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    report = {"signatures": {}}
    for entry in manifest["models"]:
        loaded = tf.saved_model.load(entry["path"])
        report["signatures"][entry["key"]] = sorted(loaded.signatures)
        outputs = {}
        for call in entry["calls"]:
            inputs = {name: tf.constant(np.load(file)) for name, file in call["inputs"].items()}
            result = loaded.signatures[call["signature"]](**inputs)
            outputs.update({f"{call['id']}/{key}": value.numpy() for key, value in result.items()})
        np.savez(os.path.join(out_folder, f"{entry['key']}.npz"), **outputs)
    # Blocked names stay None (never replaced by a real import); nothing else of ours or Keras' was loaded.
    report["blocked_still_none"] = all(sys.modules.get(name, "missing") is None for name in BLOCKED)
    report["loaded_modules"] = sorted(
        name for name, module in sys.modules.items() if module is not None and name.split(".")[0] in BLOCKED
    )
    with open(os.path.join(out_folder, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
