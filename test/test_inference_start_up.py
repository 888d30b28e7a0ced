"""Inference pays for none of ESPnet's training side: a fresh interpreter that decodes
a file with a trained model (through merit-infer's and stage 5's modules) has not
imported ESPnet's task (``espnet2.tasks.abs_task``), its text front-ends (``inflect``,
``g2p_en``), ``transformers``, or any s3prl upstream family but the model's. Together
they cost about 14 s of a 17 s start (``merit.bin.bench_inference``)."""
import json
import subprocess
import sys

PROGRAM = r'''
import json, sys
import numpy as np
import merit.bin.merit_infer, merit.bin.merit_inference
from merit.inference import Speech2Merit

result = Speech2Merit(sys.argv[1])(np.random.default_rng(0).standard_normal(16000).astype("float32") * 0.1)
assert result.posteriors is not None and result.enhanced is not None
heavy = ("espnet2.tasks.abs_task", "espnet2.train.trainer", "inflect", "g2p_en", "transformers")
print(json.dumps({"heavy": [m for m in heavy if m in sys.modules],
                  "families": sorted(m for m in sys.modules if m.endswith(".hubconf"))}))
'''


def test_decoding_imports_no_training_machinery(tiny_model):
    res = subprocess.run([sys.executable, "-c", PROGRAM, str(tiny_model)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    imported = json.loads(res.stdout.splitlines()[-1])
    assert imported == {"heavy": [], "families": ["s3prl.upstream.baseline.hubconf"]}
