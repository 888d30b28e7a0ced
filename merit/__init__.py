"""merit: joint speech enhancement (SE) and speech emotion recognition (SER).

Importing the package installs the torchaudio compatibility shim (merit/compat.py),
so that s3prl can be imported afterwards on torchaudio 2.9 and later.
"""
from merit import compat

compat.install()

__version__ = "0.1.0"
