"""The dtypes ``merit.bin.dump_ssl`` stores hidden states in, declared once for the dump
(its ``--dtype``), the disk preflight's estimate and ``DumpedFrontend``, which checks the
dtype a dump or a trained config records. No torch here: the command-line tools that
import it start fast."""

#: What ``merit.bin.dump_ssl --dtype`` accepts.
DUMP_DTYPES = ("float16", "float32")
