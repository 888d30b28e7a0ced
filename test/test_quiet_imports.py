"""Importing what merit's commands import prints nothing a user could take for an error
and tries no network: ESPnet's attention module prints a "Failed to import Flash
Attention" line, and g2p_en (imported by s3prl.hub through ESPnet's text front-ends)
calls ``nltk.download`` at import when its data is missing, which printed eight
``[nltk_data] Error loading …`` lines on an offline machine. merit.compat keeps both
quiet (see its docstring).

One fresh interpreter, with the network refused and recorded before anything else is
imported: the training task, an s3prl front-end built the way merit builds one, then
every s3prl upstream family (listing the hub's entries imports them all).
"""
import json
import re
import subprocess
import sys

PROGRAM = r'''
import json, socket, sys
attempts = []

def refuse(name):
    def refused(*args, **kwargs):
        attempts.append(f"{name}{args[1:3] if name == 'connect' else args[:2]}")
        raise OSError(f"network refused by test_quiet_imports ({name})")
    return refused

socket.getaddrinfo = refuse("getaddrinfo")
socket.create_connection = refuse("create_connection")
socket.socket.connect = refuse("connect")
socket.socket.connect_ex = refuse("connect_ex")

import merit.tasks.merit_task  # what merit_train, merit_inference … import
from merit.models.frontend import S3PRLFrontend

frontend = S3PRLFrontend(upstream="fbank")  # an s3prl front-end, built the way merit builds one
from s3prl.nn import S3PRLUpstream
S3PRLUpstream.available_names()  # every family's hubconf, g2p_en among them (the hub is lazy)
import nltk, nltk.downloader
restored = nltk.download is nltk.downloader.download  # the stand-in lived only during g2p_en's import
imported = [m for m in ("s3prl.hub", "g2p_en", "espnet.nets.pytorch_backend.transformer.attention")
            if m in sys.modules]
sys.stdout.flush()
print("RESULT " + json.dumps({"attempts": attempts, "imported": imported,
                                "restored": restored}), file=sys.__stdout__)
'''

NOISE = re.compile(r"nltk_data|Flash Attention|flash_attn|Error", re.IGNORECASE)


def test_imports_are_quiet_and_offline():
    res = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    *printed, last = res.stdout.splitlines() or [""]
    assert last.startswith("RESULT "), res.stdout[-3000:]
    result = json.loads(last[len("RESULT "):])
    # the noisy modules were really imported, so their silence means something
    assert result["imported"] == ["s3prl.hub", "g2p_en",
                                  "espnet.nets.pytorch_backend.transformer.attention"]
    assert result["attempts"] == []
    assert result["restored"]
    noise = [line for line in printed + res.stderr.splitlines() if NOISE.search(line)]
    assert noise == [], "\n".join(noise)
