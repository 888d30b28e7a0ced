"""merit: joint speech enhancement (SE) and speech emotion recognition (SER).

Importing the package installs merit/compat.py's import hook: s3prl can then be
imported on torchaudio 2.9 and later, and ESPnet's and g2p_en's import-time output
(a flash-attention notice, nltk download attempts) stays off the user's screen and
off the network.
"""
from merit import compat

compat.install()

__version__ = "0.1.0"
